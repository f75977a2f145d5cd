/**
 * Join-token verification, once per request. The rate limiter needs the verified subject as its key
 * (before the route's own hooks run) and the route needs the claims: both share one verification.
 */
import type { FastifyRequest } from 'fastify';
import { TokenError, verifyJoinToken, type JoinClaims, type KeySet } from '../protocol/tokens';

const verified = new WeakMap<FastifyRequest, Promise<JoinClaims>>();

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new TokenError('token_missing', 'the Authorization header must be "Bearer <join token>"');
  return match[1];
}

export function authenticateJoin(request: FastifyRequest, keys: KeySet): Promise<JoinClaims> {
  let claims = verified.get(request);
  if (!claims) {
    const { roomId } = request.params as { roomId?: string };
    claims = Promise.resolve().then(() => verifyJoinToken(keys, bearerToken(request), String(roomId ?? '')));
    // Read later by the route; a rejection here is not unhandled, it is answered there.
    claims.catch(() => {});
    verified.set(request, claims);
  }
  return claims;
}

/** Rate-limit key: the token's subject when it verifies, the client address otherwise. */
export async function joinRateLimitKey(request: FastifyRequest, keys: KeySet): Promise<string> {
  try {
    return `sub:${(await authenticateJoin(request, keys)).sub}`;
  } catch {
    return `ip:${request.ip}`;
  }
}
