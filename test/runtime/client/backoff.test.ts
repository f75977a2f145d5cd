import fc from 'fast-check';
import { backoffCeilingMs, backoffDelayMs } from '../../../runtime/client/backoff';

describe('rejoin backoff (full jitter, capped)', () => {
  const backoff = { baseMs: 500, capMs: 10_000 };

  it('doubles the ceiling per attempt up to the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map((n) => backoffCeilingMs(n, backoff))).toEqual([
      500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000,
    ]);
  });

  it('always lies in [0, min(cap, base * 2^attempt)]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 1, max: 5_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, baseMs, extraCapMs, r) => {
          const cfg = { baseMs, capMs: baseMs + extraCapMs };
          const delay = backoffDelayMs(attempt, cfg, () => r);
          return (
            Number.isInteger(delay) &&
            delay >= 0 &&
            delay <= Math.min(cfg.capMs, baseMs * 2 ** Math.min(attempt, 30)) &&
            delay <= cfg.capMs
          );
        },
      ),
    );
  });

  it('spreads a herd over the whole window instead of synchronizing it', () => {
    // 1,000 clients at attempt 3 with Math.random: the delays cover the window [0, 4000) broadly.
    const delays = Array.from({ length: 1_000 }, () => backoffDelayMs(3, backoff));
    const buckets = new Array(4).fill(0) as number[];
    for (const d of delays) buckets[Math.floor(d / 1_000)]!++;
    expect(Math.max(...delays)).toBeLessThan(4_000);
    // Each quarter of the window gets a fair share (expected 250; 150 is far outside random variation).
    for (const count of buckets) expect(count).toBeGreaterThan(150);
  });

  it('uses the extremes of the random source as the bounds', () => {
    expect(backoffDelayMs(2, backoff, () => 0)).toBe(0);
    expect(backoffDelayMs(2, backoff, () => 0.999999)).toBe(1_999);
  });
});
