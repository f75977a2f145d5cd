/**
 * The failure detector's rule on a stepped clock: a media stall alone (a muted room) or a slow ping
 * alone (a slow signaling path while media flows) never suspects the server; both together do, and
 * name the signal that went first; without media a missed ping decides; ICE `disconnected` decides;
 * a suspicion clears once media and pings are back. The real-call cases are in switchover.test.ts.
 */
import { FailureDetector, inboundBytes, type SuspectedEvent } from '../../../runtime/client/FailureDetector';

const CONFIG = { statsIntervalMs: 250, mediaStallMs: 600, pingMissMs: 700 };

function rig({ media = true } = {}) {
  let now = 0;
  let bytes: number | undefined = media ? 1_000 : undefined;
  const pings: number[] = [];
  const detector = new FailureDetector({
    ...CONFIG,
    clock: () => now,
    sample: async () => (bytes === undefined ? undefined : { bytesReceived: bytes }),
    pingNow: () => pings.push(now),
  });
  const suspected: SuspectedEvent[] = [];
  const cleared: number[] = [];
  detector.on('suspected', (e) => suspected.push(e));
  detector.on('cleared', (e) => cleared.push(e.afterMs));
  return {
    detector,
    suspected,
    cleared,
    pings,
    /** Advances the clock in stats periods, media growing or not. */
    async run(ms: number, { media }: { media: boolean }) {
      for (let t = 0; t < ms; t += CONFIG.statsIntervalMs) {
        now += CONFIG.statsIntervalMs;
        if (media && bytes !== undefined) bytes += 500;
        await detector.tick();
      }
    },
    at: () => now,
  };
}

describe('FailureDetector', () => {
  it('does not suspect a silent room whose pings are answered', async () => {
    const r = rig();
    await r.run(500, { media: true });
    for (let i = 0; i < 20; i++) {
      r.detector.pingSent();
      await r.run(250, { media: false });
      r.detector.pongReceived();
      await r.run(1_000, { media: false });
    }
    expect(r.suspected).toEqual([]);
    // The stall was seen and a ping was asked for at once.
    expect(r.pings.length).toBeGreaterThan(0);
  });

  it('does not suspect a slow signaling path while media flows', async () => {
    const r = rig();
    r.detector.pingSent();
    await r.run(5_000, { media: true });
    expect(r.suspected).toEqual([]);
  });

  it('suspects the server when media stalls and a ping goes unanswered, naming the first signal', async () => {
    const r = rig();
    await r.run(1_000, { media: true });
    const frozenAt = r.at();
    await r.run(250, { media: false });
    r.detector.pingSent(); // the next periodic ping, into the frozen path
    await r.run(1_500, { media: false });
    expect(r.suspected).toHaveLength(1);
    const [e] = r.suspected;
    expect(e!.signal).toBe('media_stall');
    expect(e!.since).toBeGreaterThanOrEqual(frozenAt + CONFIG.mediaStallMs - CONFIG.statsIntervalMs);
    expect(e!.evidence).toEqual([
      expect.stringMatching(/^no inbound media for \d+ ms$/),
      expect.stringMatching(/^ping unanswered for \d+ ms$/),
    ]);
    // Reported once per episode.
    await r.run(2_000, { media: false });
    expect(r.suspected).toHaveLength(1);
    // Back to normal: cleared.
    r.detector.pongReceived();
    await r.run(500, { media: true });
    expect(r.cleared).toHaveLength(1);
  });

  it('names the missed ping when it went first', async () => {
    const r = rig();
    await r.run(500, { media: true });
    r.detector.pingSent();
    await r.run(1_000, { media: true });
    await r.run(1_000, { media: false });
    expect(r.suspected.map((e) => e.signal)).toEqual(['ping_missed']);
  });

  it('lets a missed ping decide alone when there is no media', async () => {
    const r = rig({ media: false });
    r.detector.pingSent();
    await r.run(500, { media: false });
    expect(r.suspected).toEqual([]);
    await r.run(250, { media: false });
    expect(r.suspected.map((e) => e.signal)).toEqual(['ping_missed']);
  });

  it('suspects the server at ICE disconnected and clears at connected', async () => {
    const r = rig();
    await r.run(500, { media: true });
    r.detector.iceState(true);
    expect(r.suspected.map((e) => e.signal)).toEqual(['ice_disconnected']);
    r.detector.iceState(false);
    expect(r.cleared).toHaveLength(1);
  });

  it('refuses a non-positive threshold', () => {
    expect(
      () =>
        new FailureDetector({
          ...CONFIG,
          pingMissMs: 0,
          sample: async () => undefined,
          pingNow: () => undefined,
        }),
    ).toThrow(/pingMissMs must be a positive number/);
  });

  it('sums transport entries, or nominated pairs where there are none', () => {
    const report = (entries: object[]) =>
      new Map(entries.map((e, i) => [String(i), e])) as unknown as RTCStatsReport;
    expect(
      inboundBytes([
        report([
          { type: 'transport', bytesReceived: 100 },
          { type: 'candidate-pair', nominated: true, bytesReceived: 100 },
        ]),
        report([
          { type: 'candidate-pair', nominated: false, bytesReceived: 7 },
          { type: 'candidate-pair', nominated: true, bytesReceived: 40 },
        ]),
      ]),
    ).toBe(140);
  });
});
