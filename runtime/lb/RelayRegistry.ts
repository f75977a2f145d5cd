/**
 * Every signaling relay this LB holds open, and the rules for opening one:
 *
 *   - A media token opens one relay, ever: its peer id is remembered from the moment an upgrade with it
 *     is admitted until the token expires. A second upgrade with the same token (a replay, a leaked
 *     URL, a client opening twice) is refused before the socket opens. A reconnecting client asks the
 *     API for a new token, as it must anyway (the media server lets a peer id join once).
 *   - Concurrent relays are capped per client address and per identity, so one client cannot hold the
 *     LB's sockets and the media servers' sessions that come with them. The address cap is generous:
 *     a corporate NAT puts a whole office behind one address.
 *
 * The media server enforces "one session per token" too, across every LB of the region; this is the
 * edge's own line, which costs no media server a connection.
 */
import { ApiError } from './apiError';
import type { SignalingRelay } from './SignalingRelay';

/** Peer ids remembered at most; past it the oldest are forgotten (they have expired by then in practice). */
const MAX_REMEMBERED_TOKENS = 200_000;
/** A token is remembered a little past its expiry: verifiers tolerate some clock skew. */
const USED_TOKEN_SLACK_MS = 60_000;

export interface RelayRegistryOptions {
  /** Concurrent relays from one client address (a NAT can hold a whole office). */
  readonly relaysPerAddress: number;
  /** Concurrent relays of one identity (a user in a few rooms, tabs or devices). */
  readonly relaysPerIdentity: number;
  /** Epoch milliseconds: used tokens are forgotten once they have expired by it. */
  readonly clock: () => number;
}

/** What an admitted upgrade holds until its relay closes. */
export interface RelayAdmission {
  readonly peerId: string;
  readonly identity: string;
  readonly address: string;
}

export class RelayRegistry {
  readonly relays = new Set<SignalingRelay>();
  /** Peer id → when its token expires (epoch ms), in admission order. */
  private readonly usedTokens = new Map<string, number>();
  private readonly byAddress = new Map<string, number>();
  private readonly byIdentity = new Map<string, number>();
  private readonly relaysPerAddress: number;
  private readonly relaysPerIdentity: number;
  private readonly clock: () => number;

  constructor(opts: RelayRegistryOptions) {
    this.relaysPerAddress = opts.relaysPerAddress;
    this.relaysPerIdentity = opts.relaysPerIdentity;
    this.clock = opts.clock;
  }

  get size(): number {
    return this.relays.size;
  }

  /**
   * Admits an upgrade for a verified media token, or throws the 4xx the client gets instead of a
   * socket. The admission counts against the caps until `release`.
   */
  admit(claims: { sub: string; identity: string; exp: number }, address: string): RelayAdmission {
    this.forgetExpired();
    if (this.usedTokens.has(claims.sub)) {
      throw new ApiError(
        409,
        'token_used',
        'this media token already opened a signaling session; join again through the API for a new one',
      );
    }
    if ((this.byAddress.get(address) ?? 0) >= this.relaysPerAddress) {
      throw new ApiError(
        429,
        'too_many_sessions',
        `more than ${this.relaysPerAddress} signaling sessions from one address`,
      );
    }
    if ((this.byIdentity.get(claims.identity) ?? 0) >= this.relaysPerIdentity) {
      throw new ApiError(
        429,
        'too_many_sessions',
        `more than ${this.relaysPerIdentity} signaling sessions for one identity; leave one first`,
      );
    }
    this.usedTokens.set(claims.sub, claims.exp * 1000 + USED_TOKEN_SLACK_MS);
    if (this.usedTokens.size > MAX_REMEMBERED_TOKENS) {
      this.usedTokens.delete(this.usedTokens.keys().next().value!);
    }
    increment(this.byAddress, address);
    increment(this.byIdentity, claims.identity);
    return { peerId: claims.sub, identity: claims.identity, address };
  }

  /** The admission's relay opened; it is closed with the others at shutdown. */
  track(relay: SignalingRelay): void {
    this.relays.add(relay);
  }

  /** A relay that was tracked without an admission (cascade control channels) closed. */
  untrack(relay: SignalingRelay): void {
    this.relays.delete(relay);
  }

  /** The relay closed (or the upgrade never happened): its caps are free again; its token stays used. */
  release(admission: RelayAdmission, relay?: SignalingRelay): void {
    if (relay) this.relays.delete(relay);
    decrement(this.byAddress, admission.address);
    decrement(this.byIdentity, admission.identity);
  }

  closeAll(reason: string): void {
    for (const relay of [...this.relays]) relay.close(reason);
  }

  private forgetExpired(): void {
    const now = this.clock();
    // Insertion order is admission order and token lifetimes are equal, so expiry is nearly ordered.
    for (const [peerId, expiresAt] of this.usedTokens) {
      if (expiresAt > now) break;
      this.usedTokens.delete(peerId);
    }
  }
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}
