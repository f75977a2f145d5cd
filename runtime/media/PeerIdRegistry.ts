/**
 * One media token opens one signaling session. A media token names one peer id (`sub`, minted by the LB
 * for one join); this registry knows, per peer id:
 *
 *   - which connection holds it: claimed when a connection presents the token (the URL token, checked
 *     before the WebSocket upgrade, or the `join` request's), released when that TCP connection closes.
 *     Another connection presenting the same token meanwhile is refused, so a leaked token cannot open a
 *     second session next to the first, nor race it to the join.
 *   - whether it has joined: a peer id that joined this server never joins again (a leaked or replayed
 *     token cannot re-enter a call once its peer left); a reconnecting client gets a new token from the
 *     LB. Remembered until a little past the token's expiry, after which the token itself is refused.
 */

/** The verifier tolerates clock skew, so a used id is remembered a little past its token's expiry. */
const USED_PEER_ID_SLACK_MS = 60_000;

/** A connection that can hold a peer id: the TCP socket the signaling WebSocket runs on. */
export interface PeerIdHolder {
  once(event: 'close', listener: () => void): unknown;
}

export type PeerIdRefusal =
  | { readonly reason: 'connected'; readonly message: string }
  | { readonly reason: 'used'; readonly message: string };

export class PeerIdRegistry {
  private readonly holders = new Map<string, PeerIdHolder>();
  private readonly used = new Map<string, number>();

  /**
   * Claims `peerId` for `holder` until the holder's connection closes, or says why it cannot: another
   * connection holds it, or it has already joined. Claiming an id one already holds is a no-op.
   */
  claim(peerId: string, holder: PeerIdHolder): PeerIdRefusal | undefined {
    const refusal = this.refusal(peerId, holder);
    if (refusal) return refusal;
    if (this.holders.get(peerId) === holder) return undefined;
    this.holders.set(peerId, holder);
    holder.once('close', () => {
      if (this.holders.get(peerId) === holder) this.holders.delete(peerId);
    });
    return undefined;
  }

  /** Why `holder` may not take `peerId` now, or undefined when it may. */
  refusal(peerId: string, holder?: PeerIdHolder): PeerIdRefusal | undefined {
    this.forgetExpired();
    if (this.used.has(peerId)) {
      return {
        reason: 'used',
        message: `media token for peer "${peerId}" was already used; get a new one from the API`,
      };
    }
    const current = this.holders.get(peerId);
    if (current !== undefined && current !== holder) {
      return {
        reason: 'connected',
        message: `media token for peer "${peerId}" is in use by another connection`,
      };
    }
    return undefined;
  }

  /** Records that `peerId` joined; its token (expiring at `tokenExpiresAtS`) cannot join again. */
  markJoined(peerId: string, tokenExpiresAtS: number): void {
    this.used.set(peerId, tokenExpiresAtS * 1000 + USED_PEER_ID_SLACK_MS);
  }

  private forgetExpired(): void {
    const now = Date.now();
    for (const [peerId, until] of this.used) if (until < now) this.used.delete(peerId);
  }
}
