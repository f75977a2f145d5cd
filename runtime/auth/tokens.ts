/**
 * Join tokens and media tokens: HS256 JWTs signed with the deployment's secret.
 *
 * - A join token is minted by the app's backend: `sub` = peer identity, `room` = the room it may join.
 * - A media token is minted by the LB for one join: bound to room + media server + peer, short-lived.
 *
 * The algorithm is pinned (no `none`, no RS/HS confusion) and each kind carries its own audience, so
 * one kind can never be replayed as the other.
 */
import { createSigner, createVerifier, TokenError as JwtError } from 'fast-jwt';
import { createSecretKey, KeyObject } from 'node:crypto';

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

/** A signing and verification key: a KeyObject made once at start-up (`secretKey`), or raw bytes. */
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

/**
 * fast-jwt signs and verifies HS256 synchronously with node:crypto's HMAC; a signer and a verifier are
 * built once per key (they are a join's hottest code after the database call).
 */
interface KeyCodec {
  sign(payload: Record<string, unknown>): string;
  verify(token: string): Record<string, unknown>;
}

const codecs = new WeakMap<TokenKey, KeyCodec>();

function codecOf(key: TokenKey): KeyCodec {
  let codec = codecs.get(key);
  if (!codec) {
    const bytes = key instanceof KeyObject ? key.export() : Buffer.from(key);
    const sign = createSigner({ key: bytes, algorithm: ALG });
    const verify = createVerifier({
      key: bytes,
      algorithms: [ALG],
      clockTolerance: CLOCK_TOLERANCE_S * 1000,
      requiredClaims: ['sub', 'exp'],
    });
    codec = { sign, verify };
    codecs.set(key, codec);
  }
  return codec;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

export async function signJoinToken(
  key: TokenKey,
  claims: { sub: string; room: string; ttlSeconds?: number; notBefore?: number },
): Promise<string> {
  const iat = nowSeconds();
  return codecOf(key).sign({
    sub: claims.sub,
    aud: JOIN_AUDIENCE,
    room: claims.room,
    iat,
    exp: iat + (claims.ttlSeconds ?? 3600),
    ...(claims.notBefore !== undefined && { nbf: claims.notBefore }),
  });
}

export async function signMediaToken(
  key: TokenKey,
  claims: { peerId: string; identity: string; room: string; server: string; ttlSeconds?: number },
): Promise<{ token: string; expiresAt: number }> {
  const iat = nowSeconds();
  const exp = iat + (claims.ttlSeconds ?? MEDIA_TOKEN_TTL_S);
  const token = codecOf(key).sign({
    sub: claims.peerId,
    aud: MEDIA_AUDIENCE,
    room: claims.room,
    server: claims.server,
    identity: claims.identity,
    iat,
    exp,
  });
  return { token, expiresAt: exp * 1000 };
}

function hasAudience(payload: Record<string, unknown>, audience: string): boolean {
  const aud = payload.aud;
  return aud === audience || (Array.isArray(aud) && aud.includes(audience));
}

async function verify(key: TokenKey, token: string | undefined, audience: string) {
  if (!token) throw new TokenError('token_missing', 'a token is required');
  let payload: Record<string, unknown>;
  try {
    payload = codecOf(key).verify(token);
  } catch (err) {
    const code = err instanceof JwtError ? err.code : undefined;
    if (code === JwtError.codes.expired) throw new TokenError('token_expired', 'the token has expired');
    if (code === JwtError.codes.inactive)
      throw new TokenError('token_not_yet_valid', 'the token is not valid yet');
    throw new TokenError('token_invalid', 'the token is malformed, tampered with or signed with another key');
  }
  // Checked here rather than by the verifier so that a token of the other kind is named as such.
  if (!hasAudience(payload, audience)) {
    throw new TokenError('token_wrong_scope', 'the token is not meant for this endpoint');
  }
  return payload;
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
  return { sub: stringClaim(payload, 'sub'), room, exp: payload.exp as number };
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
    exp: payload.exp as number,
  };
}
