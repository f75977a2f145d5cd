/** The token bucket every signaling side rate-limits frames with: a burst at once, a rate sustained. */
import { TokenBucket } from '../../../runtime/protocol/TokenBucket';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function takeAll(bucket: TokenBucket, max = 1_000): number {
  let taken = 0;
  while (taken < max && bucket.take()) taken++;
  return taken;
}

it('gives a fresh bucket its burst at once, then refuses', () => {
  const bucket = new TokenBucket({ perSecond: 1, burst: 5 });
  expect(takeAll(bucket)).toBe(5);
  expect(bucket.take()).toBe(false);
});

it('refills at the sustained rate', async () => {
  const bucket = new TokenBucket({ perSecond: 100, burst: 5 });
  takeAll(bucket);
  // 60 ms at 100 per second is six tokens, capped at the burst of five.
  await sleep(60);
  expect(bucket.take()).toBe(true);
});

it('never holds more than its burst, however long it rests', async () => {
  const bucket = new TokenBucket({ perSecond: 1_000, burst: 3 });
  takeAll(bucket);
  await sleep(50);
  // Fifty tokens' worth of time, three tokens; the loop itself refills nothing measurable at 1/ms.
  expect(takeAll(bucket, 10)).toBeLessThanOrEqual(4);
  expect(takeAll(bucket, 10)).toBeGreaterThanOrEqual(0);
});
