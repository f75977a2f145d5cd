/**
 * Join tokens and media tokens: HS256 JWTs, each kind signed with its own key set.
 *
 * - A join token is minted by the app's backend with the join keys: `sub` = peer identity, `room` =
 *   the room it may join. LBs verify it.
 * - A media token is minted by the LB for one join with the media keys: bound to room + media server +
 *   peer, short-lived. Media servers verify it, and hold only the media keys, so a media host can never
 *   mint a join token.
 *
 * Keys rotate without a flag day: every token names its key in the JWT header (`kid`), a key set has
 * one current (signing) key and may list more keys that are accepted for verification only (see
 * `parseKeySet` and docs/DEPLOY.md for the procedure). A token without a `kid`, or with one the set
 * does not hold, is refused.
 *
 * The algorithm is pinned (no `none`, no RS/HS confusion) and each kind carries its own audience, so
 * one kind can never be replayed as the other.
 */
import { createSigner, createVerifier, TokenError as JwtError } from 'fast-jwt';
import { createSecretKey, type KeyObject } from 'node:crypto';
import { MAX_IDENTITY_LENGTH, REGION_PATTERN } from './ids';

const REGION_NAME = new RegExp(REGION_PATTERN);

const ALG = 'HS256';
const JOIN_AUDIENCE = 'mrwebrtc:join';
const MEDIA_AUDIENCE = 'mrwebrtc:media';
/** Media server to media server (cascading's control channel), signed with the media keys. */
const CASCADE_AUDIENCE = 'mrwebrtc:cascade';
/** Minimum secret length: HS256 keys shorter than the hash output weaken it. */
const MIN_SECRET_BYTES = 32;
/** Clock skew tolerated between the token minter and this process. */
const CLOCK_TOLERANCE_S = 5;
export const MEDIA_TOKEN_TTL_S = 120;
/** A cascade token opens one control channel; a channel that drops asks for a new one. */
export const CASCADE_TOKEN_TTL_S = 60;

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

/** A key id: what the JWT header's `kid` carries. */
const KID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** One HS256 key and its id. */
export interface TokenKey {
  readonly kid: string;
  readonly key: KeyObject;
}

/**
 * The keys of one token kind: `current` signs, every key in `byKid` (current included) verifies.
 * Built once at start-up; signers and verifiers are cached per key.
 */
export interface KeySet {
  readonly current: TokenKey;
  readonly byKid: ReadonlyMap<string, TokenKey>;
}

/** A key set's secret as stored (Secrets Manager, the local stack's state): see `parseKeySet`. */
export interface KeySetDocument {
  readonly kid: string;
  readonly secret: string;
  readonly verify?: readonly { readonly kid: string; readonly secret: string }[];
}

/**
 * Thrown for a key set that cannot be used. `detail` says what is wrong relative to the document
 * (`secret is 5 bytes; ...`), the message prefixes what the document was; neither shows a secret.
 */
export class KeySetError extends Error {
  constructor(
    readonly what: string,
    readonly detail: string,
  ) {
    super(`${what}: ${detail}`);
    this.name = 'KeySetError';
  }
}

const KEY_SET_SHAPE = '{"kid": "...", "secret": "...", "verify": [{"kid": "...", "secret": "..."}]}';

/**
 * Parses a key set document: `{"kid": "k2", "secret": "...", "verify": [{"kid": "k1", "secret": "..."}]}`.
 * `kid` + `secret` is the current key, which signs; `verify` (optional) lists keys that are accepted
 * but never used to sign: a key about to become current, or one just retired while tokens it signed
 * are still alive.
 */
export function parseKeySet(input: string | KeySetDocument, what = 'key set'): KeySet {
  const fail = (detail: string): never => {
    throw new KeySetError(what, detail);
  };
  let doc: unknown = input;
  if (typeof input === 'string') {
    try {
      doc = JSON.parse(input);
    } catch {
      fail(`is not JSON; expected ${KEY_SET_SHAPE}`);
    }
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    fail(`must be a JSON object ${KEY_SET_SHAPE}`);
  const { kid, secret, verify, ...rest } = doc as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) fail(`has unknown field(s) ${unknown.join(', ')}; use kid, secret and verify`);
  const tokenKey = (k: unknown, sec: unknown, at: string): TokenKey => {
    if (typeof k !== 'string' || !KID_PATTERN.test(k))
      fail(`${at}kid must be 1-64 letters, digits, ".", "_" or "-"`);
    if (typeof sec !== 'string') fail(`${at}secret must be a string`);
    const bytes = Buffer.from(sec as string, 'utf8');
    if (bytes.length < MIN_SECRET_BYTES) {
      fail(`${at}secret is ${bytes.length} bytes; use at least ${MIN_SECRET_BYTES} random bytes`);
    }
    return { kid: k as string, key: createSecretKey(bytes) };
  };
  const current = tokenKey(kid, secret, '');
  const byKid = new Map([[current.kid, current]]);
  if (verify !== undefined && !Array.isArray(verify)) fail('verify must be a list of {"kid", "secret"}');
  ((verify ?? []) as unknown[]).forEach((entry, i) => {
    const e = (entry ?? {}) as Record<string, unknown>;
    const key = tokenKey(e.kid, e.secret, `verify[${i}].`);
    if (byKid.has(key.kid)) fail(`verify[${i}].kid "${key.kid}" is listed twice`);
    byKid.set(key.kid, key);
  });
  return { current, byKid };
}

/** A key set of one key: the local stack, tools and tests. */
export function singleKeySet(secret: string, kid = 'k1'): KeySet {
  return parseKeySet({ kid, secret });
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
    const bytes = key.key.export();
    const sign = createSigner({ key: bytes, algorithm: ALG, kid: key.kid });
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

/** The key a token names in its header, or null for a token that names none the set holds. */
function keyOfToken(keys: KeySet, token: string): TokenKey | null {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot > 1024) return null;
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  const kid = (header as { kid?: unknown } | null)?.kid;
  return typeof kid === 'string' ? (keys.byKid.get(kid) ?? null) : null;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

export async function signJoinToken(
  keys: KeySet,
  claims: { sub: string; room: string; ttlSeconds?: number; notBefore?: number },
): Promise<string> {
  const iat = nowSeconds();
  return codecOf(keys.current).sign({
    sub: claims.sub,
    aud: JOIN_AUDIENCE,
    room: claims.room,
    iat,
    exp: iat + (claims.ttlSeconds ?? 3600),
    ...(claims.notBefore !== undefined && { nbf: claims.notBefore }),
  });
}

export async function signMediaToken(
  keys: KeySet,
  claims: { peerId: string; identity: string; room: string; server: string; ttlSeconds?: number },
): Promise<{ token: string; expiresAt: number }> {
  const iat = nowSeconds();
  const exp = iat + (claims.ttlSeconds ?? MEDIA_TOKEN_TTL_S);
  const token = codecOf(keys.current).sign({
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

async function verify(keys: KeySet, token: string | undefined, audience: string) {
  if (!token) throw new TokenError('token_missing', 'a token is required');
  const key = keyOfToken(keys, token);
  if (!key) {
    throw new TokenError('token_invalid', 'the token names no key this service holds (header "kid")');
  }
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
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_IDENTITY_LENGTH) {
    throw new TokenError('token_invalid', `the token's "${name}" claim is missing or not a string`);
  }
  return value;
}

/** Verifies a join token for `roomId`. */
export async function verifyJoinToken(
  keys: KeySet,
  token: string | undefined,
  roomId: string,
): Promise<JoinClaims> {
  const payload = await verify(keys, token, JOIN_AUDIENCE);
  const room = stringClaim(payload, 'room');
  if (room !== roomId)
    throw new TokenError('token_wrong_scope', `the token is for another room, not "${roomId}"`);
  return { sub: stringClaim(payload, 'sub'), room, exp: payload.exp as number };
}

/** Verifies a media token for `roomId`, and for `serverId` when the verifier is (or relays to) that server. */
export async function verifyMediaToken(
  keys: KeySet,
  token: string | undefined,
  expect: { roomId: string; serverId?: string },
): Promise<MediaClaims> {
  const payload = await verify(keys, token, MEDIA_AUDIENCE);
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

/**
 * A cascade token: one leg's media server (`sub`, in `region`) asking to open the control channel of
 * room `room` to another region's leg on server `server`. Minted by the asking media server with the
 * media keys (which every media server and LB holds), under its own audience, so a media token can
 * never open a control channel nor a cascade token join a room.
 */
export interface CascadeClaims {
  /** The asking media server. */
  readonly sub: string;
  /** The asking server's region: its leg. */
  readonly region: string;
  readonly room: string;
  /** The media server asked (the remote leg's). */
  readonly server: string;
  readonly exp: number;
}

export async function signCascadeToken(
  keys: KeySet,
  claims: { fromServer: string; fromRegion: string; room: string; server: string; ttlSeconds?: number },
): Promise<string> {
  const iat = nowSeconds();
  return codecOf(keys.current).sign({
    sub: claims.fromServer,
    aud: CASCADE_AUDIENCE,
    region: claims.fromRegion,
    room: claims.room,
    server: claims.server,
    iat,
    exp: iat + (claims.ttlSeconds ?? CASCADE_TOKEN_TTL_S),
  });
}

/** Verifies a cascade token for `roomId`, and for `serverId` when the verifier is (or relays to) it. */
export async function verifyCascadeToken(
  keys: KeySet,
  token: string | undefined,
  expect: { roomId: string; serverId?: string },
): Promise<CascadeClaims> {
  const payload = await verify(keys, token, CASCADE_AUDIENCE);
  const room = stringClaim(payload, 'room');
  const server = stringClaim(payload, 'server');
  if (room !== expect.roomId)
    throw new TokenError(
      'token_wrong_scope',
      `the cascade token is for another room, not "${expect.roomId}"`,
    );
  if (expect.serverId !== undefined && server !== expect.serverId) {
    throw new TokenError('token_wrong_scope', 'the cascade token is for another media server');
  }
  const region = stringClaim(payload, 'region');
  // The asking leg's region reaches this leg's clients as the region of every peer piped from it.
  if (!REGION_NAME.test(region)) {
    throw new TokenError('token_invalid', `the cascade token's "region" claim is not a region name`);
  }
  return {
    sub: stringClaim(payload, 'sub'),
    region,
    room,
    server,
    exp: payload.exp as number,
  };
}
