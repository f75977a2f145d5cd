/**
 * Time-limited TURN credentials (the "TURN REST API" scheme, draft-uberti-behave-turn-rest-00) and the
 * `iceServers` entry of a join answer. coturn checks them with `use-auth-secret` + `static-auth-secret`:
 *
 *   username   = "<expiry, unix seconds>:<peer id>"
 *   credential = base64(HMAC-SHA1(shared secret, username))
 *
 * The relay needs no call to anyone: it recomputes the HMAC with each secret it holds and refuses a
 * username whose expiry has passed. The peer id (one join's random id) is what coturn logs and counts
 * its per-user quota on; the caller's identity never reaches the relay.
 *
 * Lifetime. The relay checks the expiry when a TURN session first authenticates: every Allocate, so
 * every TURN URL a browser tries, every ICE restart (a network change, exactly when a relay matters
 * most) and every reconnect over TCP or TLS. RFC 5766 lets a server check it again on each Refresh,
 * CreatePermission and ChannelBind of the allocation, which would drop a relayed call at the expiry;
 * coturn 4.6 does not (it keeps the session's key; test/runtime/local/turnRelay.test.ts pins that
 * down), so there an allocation outlives its credential while its client keeps refreshing it, and
 * neither a short lifetime nor a secret rotation revokes one. Either way the lifetime must cover the
 * longest call that may still need a new allocation, while a leaked credential stays useful until it
 * expires, though only for relaying to this region's media servers (the relay's peer policy) with at
 * most TURN_USER_QUOTA allocations. Eight hours covers a working day's meeting; longer calls renew by
 * rejoining (or by an ICE restart with fresh servers) before `expiresAt`. The bounds refuse lifetimes
 * that could not survive one allocation refresh (10 minutes, coturn's default allocation lifetime) or
 * that keep a credential useful past a day.
 */
import { createHmac, type KeyObject } from 'node:crypto';
import {
  TURN_CREDENTIAL_MAX_TTL_S,
  TURN_CREDENTIAL_MIN_TTL_S,
  TURN_CREDENTIAL_TTL_S,
  TURN_PORT,
} from '../protocol/turnRelayPolicy';

export { TURN_CREDENTIAL_MAX_TTL_S, TURN_CREDENTIAL_MIN_TTL_S, TURN_CREDENTIAL_TTL_S };
/** coturn's default `rest-api-separator`. */
const SEPARATOR = ':';
/** A peer id goes into the username after the separator: nothing that could be read as another field. */
const PEER_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** HMAC keys shorter than this are refused, as the token keys are (runtime/protocol/tokens.ts). */
const MIN_SECRET_BYTES = 32;

/** Thrown for an argument that cannot make a credential; the message names the field. */
export class TurnCredentialError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'TurnCredentialError';
  }
}

/** The shared secret: the string coturn holds as `static-auth-secret`, or its bytes as a key. */
export type TurnSecret = string | KeyObject;

export interface TurnCredential {
  readonly username: string;
  readonly credential: string;
  /** When the relay stops accepting it, in ms since the epoch (join answers use ms). */
  readonly expiresAt: number;
}

/** One `RTCIceServer` (W3C WebRTC): the shape browsers and the join answer take. */
export interface IceServer {
  readonly urls: readonly string[];
  readonly username: string;
  readonly credential: string;
}

/** Where a region's relay answers. */
export interface TurnEndpoint {
  /** DNS name in the family the join came in on (or an address, locally). */
  readonly host: string;
  /** TURN over UDP and TCP. @default 3478 */
  readonly port?: number;
  /** TURN over TLS (`turns:`): 443 on AWS (the load balancer's TLS listener), 5349 locally. */
  readonly tlsPort: number;
}

export interface TurnCredentialOptions {
  /** @default TURN_CREDENTIAL_TTL_S */
  readonly ttlSeconds?: number;
  /** The clock, for tests. @default Date.now() */
  readonly nowMs?: number;
}

/** The credential for one peer of one join. */
export function turnCredential(
  secret: TurnSecret,
  peerId: string,
  opts: TurnCredentialOptions = {},
): TurnCredential {
  checkSecret(secret);
  if (typeof peerId !== 'string' || !PEER_ID.test(peerId)) {
    throw new TurnCredentialError(
      'peerId',
      `${JSON.stringify(peerId)} is not a peer id; use 1-128 letters, digits, ".", "_" or "-"`,
    );
  }
  const ttlSeconds = opts.ttlSeconds ?? TURN_CREDENTIAL_TTL_S;
  if (
    !Number.isInteger(ttlSeconds) ||
    ttlSeconds < TURN_CREDENTIAL_MIN_TTL_S ||
    ttlSeconds > TURN_CREDENTIAL_MAX_TTL_S
  ) {
    throw new TurnCredentialError(
      'ttlSeconds',
      `${ttlSeconds} is out of bounds; use whole seconds from ${TURN_CREDENTIAL_MIN_TTL_S} (one allocation ` +
        `refresh) to ${TURN_CREDENTIAL_MAX_TTL_S} (a day)`,
    );
  }
  const expiry = Math.floor((opts.nowMs ?? Date.now()) / 1000) + ttlSeconds;
  const username = `${expiry}${SEPARATOR}${peerId}`;
  return { username, credential: turnPassword(secret, username), expiresAt: expiry * 1000 };
}

/** coturn's password for a TURN REST username: base64(HMAC-SHA1(secret, username)). */
export function turnPassword(secret: TurnSecret, username: string): string {
  return createHmac('sha1', secret).update(username, 'utf8').digest('base64');
}

/** The three ways to reach a relay, most efficient first: UDP, TCP, then TLS on a port firewalls allow. */
export function turnUrls(endpoint: TurnEndpoint): string[] {
  const port = endpoint.port ?? TURN_PORT;
  for (const [field, value] of [
    ['port', port],
    ['tlsPort', endpoint.tlsPort],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > 65535) {
      throw new TurnCredentialError(field, `${value} is not a port; use 1-65535`);
    }
  }
  // A host name or an IPv4 address; an IPv6 literal would need brackets and is not used here.
  if (!/^[A-Za-z0-9.-]{1,253}$/.test(endpoint.host)) {
    throw new TurnCredentialError(
      'host',
      `${JSON.stringify(endpoint.host)} is not a host name or IPv4 address`,
    );
  }
  return [
    `turn:${endpoint.host}:${port}?transport=udp`,
    `turn:${endpoint.host}:${port}?transport=tcp`,
    `turns:${endpoint.host}:${endpoint.tlsPort}?transport=tcp`,
  ];
}

/**
 * The join answer's `iceServers` for a peer served by the region behind `endpoint`: one entry, one
 * credential, the three URLs. `expiresAt` is when the relayed path stops being renewable.
 */
export function turnIceServers(
  opts: {
    readonly secret: TurnSecret;
    readonly peerId: string;
    readonly endpoint: TurnEndpoint;
  } & TurnCredentialOptions,
): { iceServers: IceServer[]; expiresAt: number } {
  const urls = turnUrls(opts.endpoint);
  const { username, credential, expiresAt } = turnCredential(opts.secret, opts.peerId, opts);
  return { iceServers: [{ urls, username, credential }], expiresAt };
}

function checkSecret(secret: TurnSecret): void {
  const bytes =
    typeof secret === 'string'
      ? Buffer.byteLength(secret, 'utf8')
      : secret.type === 'secret'
        ? (secret.symmetricKeySize ?? 0)
        : -1;
  if (bytes < MIN_SECRET_BYTES) {
    throw new TurnCredentialError(
      'secret',
      bytes < 0
        ? 'must be a shared secret (string or secret KeyObject), not an asymmetric key'
        : `is ${bytes} bytes; use at least ${MIN_SECRET_BYTES} random bytes`,
    );
  }
}
