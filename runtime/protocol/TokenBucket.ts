/**
 * A token bucket: `burst` requests at once, `perSecond` sustained. The one rate limit of signaling
 * frames, at the LB's relay and in the media server's session alike.
 */
export interface TokenBucketOptions {
  /** Sustained rate: tokens added per second. */
  readonly perSecond: number;
  /** Bucket size, and what a fresh bucket holds: a join sends a handful of requests back to back. */
  readonly burst: number;
}

export class TokenBucket {
  private readonly perSecond: number;
  private readonly burst: number;
  private tokens: number;
  private refilledAt = performance.now();

  constructor({ perSecond, burst }: TokenBucketOptions) {
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = burst;
  }

  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
