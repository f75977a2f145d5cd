/**
 * Join-token verification, once per request. The rate limiter needs the verified subject as its key
 * (before the route's own hooks run) and the route needs the claims: both share one verification,
 * kept on the request: `request.joinClaims`, which the `joinAuth` plugin adds to the routes of the
 * context that registers it.
 */
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { TokenError, verifyJoinToken, type JoinClaims, type KeySet } from '../protocol/tokens';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's join-token verification, started by the first `authenticateJoin`; null before. */
    joinClaims: Promise<JoinClaims> | null;
  }
}

export const joinAuth = fp(
  async (app) => {
    // null, not a promise: fastify shares a decoration's initial value across requests.
    app.decorateRequest('joinClaims', null);
  },
  { name: 'join-auth' },
);

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new TokenError('token_missing', 'the Authorization header must be "Bearer <join token>"');
  return match[1];
}

export function authenticateJoin(request: FastifyRequest, keys: KeySet): Promise<JoinClaims> {
  if (!request.joinClaims) {
    const { roomId } = request.params as { roomId?: string };
    const claims = Promise.resolve().then(() =>
      verifyJoinToken(keys, bearerToken(request), String(roomId ?? '')),
    );
    // Read later by the route; a rejection here is not unhandled, it is answered there.
    claims.catch(() => {});
    request.joinClaims = claims;
  }
  return request.joinClaims;
}

/** Rate-limit key: the token's subject when it verifies, the client address otherwise. */
export async function joinRateLimitKey(request: FastifyRequest, keys: KeySet): Promise<string> {
  try {
    return `sub:${(await authenticateJoin(request, keys)).sub}`;
  } catch {
    return `ip:${request.ip}`;
  }
}
