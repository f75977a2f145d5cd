/**
 * The outage policy on its own: which failures are retried, what each one teaches the exclusions, and
 * when the retries stop. The same decisions driven through real sockets are in session.test.ts.
 */
import {
  ApiError,
  ApiUnavailableError,
  SessionClosedError,
  SignalingOpenError,
  SignalingRequestError,
} from '../../../runtime/client/errors';
import {
  AttemptFailure,
  firstJoinOutage,
  joinExclusions,
  learnFrom,
  outageAfterLoss,
  retryUntilConnected,
  type AttemptSchedule,
  type Outage,
} from '../../../runtime/client/outage';

const unavailable = () => new ApiUnavailableError([]);
/** A server that broke the attempt; `excludeRegion` when its region's edge would not open a socket. */
const failedOn = (serverId: string, region: string, excludeRegion = false) =>
  new AttemptFailure(new SignalingOpenError('ws://edge', 'refused'), serverId, region, excludeRegion);

describe('outage policy', () => {
  it('excludes the lost server unless the server said the room moved or closed', () => {
    expect(outageAfterLoss('ping_timeout', 's1').serverIds).toEqual(['s1']);
    expect(outageAfterLoss('server_draining', 's1').serverIds).toEqual(['s1']);
    expect(outageAfterLoss('room_moved', 's1').serverIds).toEqual([]);
    expect(outageAfterLoss('room_closed', 's1').serverIds).toEqual([]);
    expect(joinExclusions(outageAfterLoss('room_moved', 's1'))).toEqual({});
  });

  it('learns servers and dead regions from failed attempts, bounded, oldest first out', () => {
    const outage = firstJoinOutage();
    for (let i = 1; i <= 10; i++) learnFrom(outage, failedOn(`s${i}`, `r${i}`, true));
    expect(outage.serverIds).toEqual(['s3', 's4', 's5', 's6', 's7', 's8', 's9', 's10']);
    expect(outage.regions).toEqual(['r8', 'r9', 'r10']);
    // A server that failed without its edge failing does not cost its region.
    const other = firstJoinOutage();
    expect(learnFrom(other, failedOn('s1', 'r1'))).toEqual({ regionExcluded: false });
    expect(joinExclusions(other)).toEqual({ serverIds: ['s1'] });
  });

  it('trusts the LB over its own guesses when it has nowhere left: regions first, then servers', () => {
    const outage: Outage = { ...firstJoinOutage(), serverIds: ['s1'], regions: ['r1'] };
    learnFrom(outage, unavailable());
    expect(joinExclusions(outage)).toEqual({ serverIds: ['s1'] });
    learnFrom(outage, unavailable());
    expect(joinExclusions(outage)).toEqual({});

    // Only consecutive "nowhere left" answers count: a placement in between resets the streak.
    const broken: Outage = { ...firstJoinOutage(), serverIds: ['s1'], regions: [] };
    learnFrom(broken, unavailable());
    learnFrom(broken, failedOn('s2', 'r2'));
    learnFrom(broken, unavailable());
    expect(broken.serverIds).toEqual(['s1', 's2']);
  });

  describe('retryUntilConnected', () => {
    const backoff = { baseMs: 10, capMs: 40 };
    const signal = new AbortController().signal;
    const noJitter = () => 0;

    it('announces each attempt with the exclusions it sends, and stops at the first success', async () => {
      const schedules: AttemptSchedule[] = [];
      let regionElections = 0;
      const failures = [failedOn('s1', 'r1', true), unavailable()];
      const { result, attempts } = await retryUntilConnected({
        outage: outageAfterLoss('signaling_closed', 's0'),
        maxAttempts: 5,
        backoffFirst: true,
        backoff,
        random: noJitter,
        signal,
        attempt: async () => {
          const failure = failures.shift();
          if (failure) throw failure;
          return 'live';
        },
        onScheduled: (s) => schedules.push(s),
        onRegionExcluded: () => regionElections++,
      });
      expect([result, attempts, regionElections]).toEqual(['live', 3, 1]);
      expect(schedules).toEqual([
        { attempt: 1, delayMs: 0, exclude: { serverIds: ['s0'], regions: [] } },
        { attempt: 2, delayMs: 0, exclude: { serverIds: ['s0', 's1'], regions: ['r1'] } },
        { attempt: 3, delayMs: 0, exclude: { serverIds: ['s0', 's1'], regions: [] } },
      ]);
    });

    it('waits out a shed join: at least Retry-After, jittered up to twice it', async () => {
      const shed = (retryAfterMs: number) =>
        new ApiUnavailableError([
          { url: 'http://a', outcome: 'server_error', status: 503, elapsedMs: 1, retryAfterMs },
          { url: 'http://b', outcome: 'server_error', status: 503, elapsedMs: 1, retryAfterMs: 10 },
        ]);
      for (const [jitter, expected] of [
        [0, 200],
        [0.5, 300],
        [0.999, 399],
      ] as const) {
        const schedules: AttemptSchedule[] = [];
        const failures = [shed(200)];
        await retryUntilConnected({
          outage: firstJoinOutage(),
          maxAttempts: 3,
          backoffFirst: false,
          backoff,
          random: () => jitter,
          signal,
          attempt: async () => {
            const failure = failures.shift();
            if (failure) throw failure;
            return 'live';
          },
          onScheduled: (s) => schedules.push(s),
        });
        // The first join tries at once; the retry honours the longest Retry-After (over the 40 ms cap).
        expect(schedules.map((s) => s.delayMs)).toEqual([0, expected]);
      }
    });

    it('ends at once with a final failure, unwrapped', async () => {
      const refused = new ApiError(401, 'token_invalid', 'no', 'http://api');
      const full = new SignalingRequestError('join', 'room_full', 'full');
      for (const failure of [refused, new AttemptFailure(full, 's1', 'r1')]) {
        let runs = 0;
        const outcome = retryUntilConnected({
          outage: firstJoinOutage(),
          maxAttempts: 5,
          backoffFirst: false,
          backoff,
          signal,
          attempt: async () => {
            runs++;
            throw failure;
          },
        });
        await expect(outcome).rejects.toBe(failure instanceof AttemptFailure ? full : refused);
        expect(runs).toBe(1);
      }
    });

    it('gives up after maxAttempts, naming the last failure', async () => {
      const outcome = retryUntilConnected({
        outage: firstJoinOutage(),
        maxAttempts: 3,
        backoffFirst: false,
        backoff,
        random: noJitter,
        signal,
        attempt: async () => {
          throw unavailable();
        },
      });
      await expect(outcome).rejects.toThrow(
        /^gave up after 3 attempts; the last one failed with: no API URL answered/,
      );
    });

    it('stops with the abort reason when its owner closes', async () => {
      const lifetime = new AbortController();
      const outcome = retryUntilConnected({
        outage: firstJoinOutage(),
        maxAttempts: 5,
        backoffFirst: false,
        backoff,
        signal: lifetime.signal,
        attempt: async () => {
          lifetime.abort(new SessionClosedError());
          throw unavailable();
        },
      });
      await expect(outcome).rejects.toBeInstanceOf(SessionClosedError);
    });
  });
});
