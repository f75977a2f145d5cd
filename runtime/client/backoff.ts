/**
 * Rejoin backoff: exponential with full jitter and a cap.
 *
 * When a media server or a region dies, every client on it notices within the same second. Retrying on
 * a fixed schedule would land them on the survivors in synchronized waves; full jitter (a uniform
 * delay in [0, min(cap, base * 2^attempt)]) spreads each wave over the whole window, which is what
 * keeps a region's clients from stampeding the surviving regions' LBs and media servers. Even the
 * first attempt waits a jittered [0, base], because the first wave is the largest.
 */
import type { BackoffConfig } from './config';

/** Exponent cap: 2^20 x base already exceeds any sane cap; avoids Infinity for large attempt numbers. */
const MAX_EXPONENT = 20;

/** Upper bound of the delay before attempt `attempt` (0-based). */
export function backoffCeilingMs(attempt: number, backoff: Pick<BackoffConfig, 'baseMs' | 'capMs'>): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), MAX_EXPONENT);
  return Math.min(backoff.capMs, backoff.baseMs * 2 ** exponent);
}

/** Delay before attempt `attempt` (0-based): uniform in [0, backoffCeilingMs]. */
export function backoffDelayMs(
  attempt: number,
  backoff: Pick<BackoffConfig, 'baseMs' | 'capMs'>,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCeilingMs(attempt, backoff));
}
