import { RemoteFrames, longestGap, survivorMedia, type MediaWitness } from '../../../scripts/chaos/survivors';
import { survivorMediaCheck } from '../../../scripts/chaos/verdict';

/** Frames every 100 ms from `from` to `to`, skipping [gapFrom, gapTo). */
function stream(
  frames: RemoteFrames,
  peerId: string,
  from: number,
  to: number,
  gap?: [number, number],
): void {
  for (let t = from; t <= to; t += 100) {
    if (gap && t >= gap[0] && t < gap[1]) continue;
    frames.record(peerId, t);
  }
}

function witness(id: string, region: string, peerIds: string[], frames = new RemoteFrames()): MediaWitness {
  return { id, serverRegionBefore: region, peerIds, frames };
}

describe('longestGap', () => {
  it('counts the stretch from the window start to the first frame and from the last frame to the end', () => {
    expect(longestGap([1_050, 1_150, 1_250], 1_000, 1_300)).toBe(100);
    expect(longestGap([1_100, 1_200], 1_000, 2_000)).toBe(800);
    expect(longestGap([400, 1_700], 1_000, 2_000)).toBe(700);
  });

  it('is the whole window when nothing arrived in it', () => {
    expect(longestGap([], 1_000, 3_000)).toBe(2_000);
    expect(longestGap([500, 3_500], 1_000, 3_000)).toBe(2_000);
  });
});

describe('survivorMedia', () => {
  const window = { from: 10_000, to: 20_000 };

  it('pairs only the clients outside the failed region and takes the worse direction of each pair', () => {
    const eu = witness('eu', 'eu-west-1', ['p-eu']);
    const ap = witness('ap', 'ap-southeast-1', ['p-ap']);
    const us = witness('us', 'us-east-1', ['p-us']);
    stream(eu.frames, 'p-ap', 9_000, 20_000);
    // ap lost eu's video for 600 ms after the injection.
    stream(ap.frames, 'p-eu', 9_000, 20_000, [12_000, 12_600]);
    // us (in the failed region) lost everything; it is not a survivor.
    stream(eu.frames, 'p-us', 9_000, 10_000);
    const media = survivorMedia([eu, ap, us], 'us-east-1', window);
    expect(media.pairs).toBe(1);
    expect(media.byPair).toEqual([{ a: 'eu', b: 'ap', gapMs: 700 }]);
    expect(media.maxGapMs).toBe(700);
    expect(survivorMediaCheck(media, 'us-east-1').pass).toBe(false);
  });

  it('judges a sender across all its peer ids, so a survivor that rejoined shows its own gap', () => {
    const eu = witness('eu', 'eu-west-1', ['p-eu']);
    const ap = witness('ap', 'ap-southeast-1', ['p-ap-1', 'p-ap-2']);
    stream(eu.frames, 'p-ap-1', 9_000, 11_000);
    stream(eu.frames, 'p-ap-2', 13_000, 20_000);
    stream(ap.frames, 'p-eu', 9_000, 20_000);
    expect(survivorMedia([eu, ap], 'us-east-1', window).maxGapMs).toBe(2_000);
  });

  it('passes under 500 ms and fails when no pair exists to measure', () => {
    const eu = witness('eu', 'eu-west-1', ['p-eu']);
    const ap = witness('ap', 'ap-southeast-1', ['p-ap']);
    stream(eu.frames, 'p-ap', 9_000, 20_000, [15_000, 15_300]);
    stream(ap.frames, 'p-eu', 9_000, 20_000);
    const media = survivorMedia([eu, ap], 'us-east-1', window);
    expect(media).toMatchObject({ pairs: 1, maxGapMs: 400, p95GapMs: 400 });
    expect(survivorMediaCheck(media, 'us-east-1').pass).toBe(true);
    const none = survivorMedia([eu], 'us-east-1', window);
    expect(none).toMatchObject({ pairs: 0, maxGapMs: null });
    expect(survivorMediaCheck(none, 'us-east-1').pass).toBe(false);
  });

  it('keeps the last frame before the injection when trimming, so the first gap is measured right', () => {
    const frames = new RemoteFrames();
    stream(frames, 'p', 0, 9_900);
    frames.trim(10_000);
    expect(frames.timesFrom(['p'])[0]).toBeLessThan(8_000 + 1);
    expect(longestGap(frames.timesFrom(['p']), 10_000, 10_500)).toBe(500);
  });
});

describe('RemoteFrames.flowingSince', () => {
  it('is the decode time of the first frame after the moment, once enough frames followed it', () => {
    const frames = new RemoteFrames();
    for (const t of [100, 200, 1_050, 1_080]) frames.record('a', t);
    frames.record('b', 1_020);
    // Three frames since 1 000 (1 020 from b, 1 050 and 1 080 from a): flowing since the first.
    expect(frames.flowingSince(1_000, 3)).toBe(1_020);
    // Not yet four: no media yet, whatever came before the moment.
    expect(frames.flowingSince(1_000, 4)).toBeNull();
    frames.record('a', 1_110);
    expect(frames.flowingSince(1_000, 4)).toBe(1_020);
  });
});
