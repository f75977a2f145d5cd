/**
 * Join tokens and media tokens: HS256 JWTs signed with the deployment's secret.
 *
 * - A join token is minted by the app's backend: `sub` = peer identity, `room` = the room it may join.
 * - A media token is minted by the LB for one join: bound to room + media server + peer, short-lived.
 *
 * The algorithm is pinned (no `none`, no RS/HS confusion) and each kind carries its own audience, so
 * one kind can never be replayed as the other.
 */
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { createSecretKey, type KeyObject } from 'node:crypto';

const ALG = 'HS256';
const JOIN_AUDIENCE = 'mrwebrtc:join';
const MEDIA_AUDIENCE = 'mrwebrtc:media';
/** Minimum secret length: HS256 keys shorter than the hash output weaken it. */
const MIN_SECRET_BYTES = 32;
/** Clock skew tolerated between the token minter and this process. */
const CLOCK_TOLERANCE_S = 5;
export const MEDIA_TOKEN_TTL_S = 120;

export type TokenErrorCode =
  'token_missing' | 'token_invalid' | 'token_expired' | 'token_not_yet_valid' | 'token_wrong_scope';

export class TokenError extends Error {
  constructor(
    readonly code: TokenErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

export interface JoinClaims {
  readonly sub: string;
  readonly room: string;
  readonly exp: number;
}

export interface MediaClaims {
  /** Peer id, unique per join. */
  readonly sub: string;
  /** The identity of the join token the media token was minted for. */
  readonly identity: string;
  readonly room: string;
  readonly server: string;
  readonly exp: number;
}

/**
 * A verification key: a KeyObject made once at start-up (jose re-imports raw bytes on every sign and
 * verify, a measurable share of a join's CPU), or raw bytes where that does not matter.
 */
export type TokenKey = KeyObject | Uint8Array;

export function secretKey(secret: string): KeyObject {
  const bytes = Buffer.from(secret, 'utf8');
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new Error(
      `the token secret is ${bytes.length} bytes; use at least ${MIN_SECRET_BYTES} random bytes`,
    );
  }
  return createSecretKey(bytes);
}

export async function signJoinToken(
  key: TokenKey,
  claims: { sub: string; room: string; ttlSeconds?: number; notBefore?: number },
): Promise<string> {
  const jwt = new SignJWT({ room: claims.room })
    .setProtectedHeader({ alg: ALG, typ: 'JWT' })
    .setSubject(claims.sub)
    .setAudience(JOIN_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${claims.ttlSeconds ?? 3600}s`);
  if (claims.notBefore !== undefined) jwt.setNotBefore(claims.notBefore);
  return jwt.sign(key);
}

export async function signMediaToken(
  key: TokenKey,
  claims: { peerId: string; identity: string; room: string; server: string; ttlSeconds?: number },
): Promise<{ token: string; expiresAt: number }> {
  const ttl = claims.ttlSeconds ?? MEDIA_TOKEN_TTL_S;
  const exp = Math.floor(Date.now() / 1000) + ttl;
  const token = await new SignJWT({ room: claims.room, server: claims.server, identity: claims.identity })
    .setProtectedHeader({ alg: ALG, typ: 'JWT' })
    .setSubject(claims.peerId)
    .setAudience(MEDIA_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(key);
  return { token, expiresAt: exp * 1000 };
}

async function verify(key: TokenKey, token: string | undefined, audience: string) {
  if (!token) throw new TokenError('token_missing', 'a token is required');
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: [ALG],
      audience,
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['sub', 'exp'],
    });
    return payload;
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw new TokenError('token_expired', 'the token has expired');
    if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'nbf') {
      throw new TokenError('token_not_yet_valid', 'the token is not valid yet');
    }
    if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'aud') {
      throw new TokenError('token_wrong_scope', 'the token is not meant for this endpoint');
    }
    throw new TokenError('token_invalid', 'the token is malformed, tampered with or signed with another key');
  }
}

function stringClaim(payload: Record<string, unknown>, name: string): string {
  const value = payload[name];
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) {
    throw new TokenError('token_invalid', `the token's "${name}" claim is missing or not a string`);
  }
  return value;
}

/** Verifies a join token for `roomId`. */
export async function verifyJoinToken(
  key: TokenKey,
  token: string | undefined,
  roomId: string,
): Promise<JoinClaims> {
  const payload = await verify(key, token, JOIN_AUDIENCE);
  const room = stringClaim(payload, 'room');
  if (room !== roomId)
    throw new TokenError('token_wrong_scope', `the token is for another room, not "${roomId}"`);
  return { sub: stringClaim(payload, 'sub'), room, exp: payload.exp! };
}

/** Verifies a media token for `roomId`, and for `serverId` when the verifier is (or relays to) that server. */
export async function verifyMediaToken(
  key: TokenKey,
  token: string | undefined,
  expect: { roomId: string; serverId?: string },
): Promise<MediaClaims> {
  const payload = await verify(key, token, MEDIA_AUDIENCE);
  const room = stringClaim(payload, 'room');
  const server = stringClaim(payload, 'server');
  if (room !== expect.roomId)
    throw new TokenError('token_wrong_scope', `the media token is for another room, not "${expect.roomId}"`);
  if (expect.serverId !== undefined && server !== expect.serverId) {
    throw new TokenError('token_wrong_scope', 'the media token is for another media server');
  }
  return {
    sub: stringClaim(payload, 'sub'),
    identity: stringClaim(payload, 'identity'),
    room,
    server,
    exp: payload.exp!,
  };
}
