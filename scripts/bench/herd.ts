/**
 * `npm run bench -- herd [--quick]`: a killed region's clients rejoin the two survivors at once.
 *
 * Two survivor regions, each one real LB process (runtime/lb/server.ts bundled as the image runs it)
 * with two media servers; one dynalite holds the table for both (a global table with no replication
 * lag: the herd's cost, not replication, is measured). The media servers are signaling stand-ins
 * (they answer `join` and `ping`; no media) registered and heartbeated as table items, so
 * each join goes through the LB's whole path: token check, placement and takeover with conditional
 * writes, media token, WebSocket relay to the server. The killed region's two servers are items whose
 * heartbeats stopped, holding every room of the herd.
 *
 * - Survivors' own calls: 100 clients per survivor joined before the herd, their signaling open and
 *   pinged every 500 ms (the SDK's period) through the LBs during the herd; a lost socket or a ping
 *   unanswered within 3 s (the SDK's pong timeout) counts as an affected session. They and the media
 *   stand-ins run in a process of their own (support/herdSurvivorSide.ts), apart from the herd's.
 * - The herd: N clients (2 per room), half arriving through each survivor's LB (DNS latency routing),
 *   each the SDK's own code (ApiClient, requestJoin, SignalingChannel, the outage policy of
 *   retryUntilConnected with its jittered backoff and Retry-After) rejoining with the dead server
 *   excluded, all detecting the loss within the same 100 ms.
 *
 * Reported: time until every herd client is rejoined (signaling joined on a live server), join
 * latency (each HTTP attempt) p50/p99, answers by status and code (what the LBs shed), failed
 * rejoins, the survivors' ping RTT p99 and affected sessions (by cause), and each process's longest
 * event-loop delay during the herd.
 */
import { setMaxListeners } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ApiUnavailableError } from '../../runtime/client/errors';
import type { nodePlatform } from '../../runtime/client/nodePlatform';
import type { SignalingChannel } from '../../runtime/client/SignalingChannel';
import type { Store } from '../../runtime/store';
import { startCountedDynamo } from './support/countedDynamo';
import { FakeFleet } from './support/fakeFleet';
import { connectClient, type JoinStats } from './support/herdClient';
import { SurvivorSide, type SurvivorCallsResult } from './support/herdSurvivorSide';
import { BENCH_JOIN_KEYS, startLbProcess, type LbProcess } from './support/lbProcess';
import { sleep } from './support/processes';
import { mintJoinTokens } from './support/tokens';
import { benchHeader, emit, percentileOf, progress, round, type BenchResult } from './report';

interface HerdPlan {
  readonly herdClients: number;
  readonly survivorClientsPerRegion: number;
  /** The whole herd must be back within this, or the bench reports the stragglers as failed. */
  readonly deadlineMs: number;
}

const FULL: HerdPlan = { herdClients: 2_000, survivorClientsPerRegion: 100, deadlineMs: 120_000 };
const QUICK: HerdPlan = { herdClients: 400, survivorClientsPerRegion: 20, deadlineMs: 60_000 };

const SURVIVORS = ['eu-west-1', 'ap-southeast-1'] as const;
const DEAD_REGION = 'us-east-1';
/** Clients notice the loss within this window (socket close, all at once). */
const DETECTION_SPREAD_MS = 100;

/** The two survivor regions: their LB processes, media stand-ins (the survivor side) and heartbeats. */
interface Survivors {
  readonly lbs: LbProcess[];
  readonly fleets: FakeFleet[];
  side?: SurvivorSide;
}

async function startSurvivorRegions(
  dynamo: Awaited<ReturnType<typeof startCountedDynamo>>,
  admin: Store,
  world: Survivors,
): Promise<SurvivorSide> {
  const side = (world.side = await SurvivorSide.start());
  const urls = await side.standIns(SURVIVORS.length * 2);
  for (const [r, region] of SURVIVORS.entries()) {
    const servers = [0, 1].map((i) => ({
      id: `${region}-m${i}`,
      endpoint: urls[r * 2 + i]!,
      capacity: 1_000_000,
    }));
    const fleet = new FakeFleet(admin, region, servers);
    await fleet.start();
    world.fleets.push(fleet);
  }
  for (const region of SURVIVORS) world.lbs.push(await startLbProcess(dynamo, { region, logLevel: 'warn' }));
  for (const [i, region] of SURVIVORS.entries()) {
    await admin.regions.putSummary({
      region,
      apiUrl: world.lbs[i]!.baseUrl,
      liveServers: 2,
      load: 0,
      capacity: 2_000_000,
      reportedAt: Date.now(),
    });
  }
  return side;
}

/** The killed region: two servers whose heartbeats stopped a minute ago, holding every herd room. */
async function seedDeadRegion(admin: Store, plan: HerdPlan): Promise<{ servers: string[]; rooms: string[] }> {
  const servers = [0, 1].map((i) => `${DEAD_REGION}-m${i}`);
  for (const id of servers) {
    await admin.servers.put({
      id,
      region: DEAD_REGION,
      endpoint: 'ws://127.0.0.1:1',
      publicIp: '127.0.0.1',
      capacity: 1_000_000,
      load: 0,
      status: 'active',
      heartbeatAt: Date.now() - 60_000,
      startedAt: 0,
    });
  }
  const rooms = Array.from({ length: plan.herdClients / 2 }, (_, i) => `herd-${i}`);
  for (const [i, room] of rooms.entries()) {
    await admin.rooms.place({ roomId: room, serverId: servers[i % 2]!, region: DEAD_REGION });
  }
  return { servers, rooms };
}

/** Everything a simulated client needs besides its own identity. */
interface ClientContext {
  readonly lbs: readonly LbProcess[];
  readonly platforms: Array<ReturnType<typeof nodePlatform>>;
  readonly channels: SignalingChannel[];
  readonly signal: AbortSignal;
}

/** The survivors' own calls, joined (on the survivor side) before the herd, half through each LB. */
async function joinSurvivorCalls(
  side: SurvivorSide,
  lbs: readonly LbProcess[],
  plan: HerdPlan,
): Promise<number> {
  const calls = Array.from({ length: plan.survivorClientsPerRegion * 2 }, (_, i) => ({
    sub: `local-${i}`,
    room: `local-${i >> 1}`,
  }));
  const tokens = await mintJoinTokens(BENCH_JOIN_KEYS, calls);
  return side.join(calls.map((c, i) => ({ lbUrl: lbs[i % 2]!.baseUrl, room: c.room, token: tokens[i]! })));
}

interface HerdOutcome {
  /** Each rejoined client's time since the herd started, ms. */
  readonly doneAt: number[];
  readonly failed: number;
  readonly failures: Record<string, number>;
  readonly stats: JoinStats;
}

/** The herd: every client of the dead region rejoins at once, half through each survivor's LB. */
async function runHerd(
  ctx: ClientContext,
  plan: HerdPlan,
  dead: { servers: readonly string[]; rooms: readonly string[] },
  abortAll: (reason: Error) => void,
): Promise<HerdOutcome> {
  const doneAt: number[] = [];
  const failures: Record<string, number> = {};
  const stats: JoinStats = { latenciesMs: [], answers: {} };
  let failed = 0;
  const tokens = await mintJoinTokens(
    BENCH_JOIN_KEYS,
    Array.from({ length: plan.herdClients }, (_, i) => ({ sub: `herd-${i}`, room: dead.rooms[i >> 1]! })),
  );
  const herdStart = performance.now();
  const ticker = setInterval(
    () =>
      progress(
        `${Math.round((performance.now() - herdStart) / 1000)} s: ${doneAt.length}/${plan.herdClients} rejoined, ${failed} failed, answers ${JSON.stringify(stats.answers)}`,
      ),
    1_000,
  );
  const deadline = setTimeout(() => abortAll(new Error('herd deadline')), plan.deadlineMs);
  await Promise.all(
    tokens.map(async (token, i) => {
      await sleep(Math.random() * DETECTION_SPREAD_MS);
      try {
        const ch = await connectClient({
          lbUrl: ctx.lbs[i % 2]!.baseUrl,
          index: plan.survivorClientsPerRegion * 2 + i,
          platforms: ctx.platforms,
          room: dead.rooms[i >> 1]!,
          token,
          exclude: dead.servers[(i >> 1) % 2],
          stats,
          signal: ctx.signal,
        });
        ctx.channels.push(ch);
        doneAt.push(performance.now() - herdStart);
      } catch (err) {
        failed++;
        const key =
          err instanceof ApiUnavailableError ? 'api_unavailable' : (err as Error).message.slice(0, 60);
        failures[key] = (failures[key] ?? 0) + 1;
      }
    }),
  );
  clearTimeout(deadline);
  clearInterval(ticker);
  return { doneAt, failed, failures, stats };
}

const lbMetrics = (lbs: readonly LbProcess[]): Promise<string[]> =>
  Promise.all(lbs.map((lb) => fetch(`${lb.baseUrl}/metrics`).then((r) => r.text())));

/** A number of an LB's /metrics text, or null if the series is missing. */
function metric(text: string, pattern: RegExp): number | null {
  const m = pattern.exec(text);
  return m ? Number(m[1]) : null;
}

/**
 * Joins each LB shed (its own counter), each LB's longest event-loop delay since the last scrape
 * (prom-client's default metrics), and where the herd's rooms landed.
 */
async function lbFigures(
  lbs: readonly LbProcess[],
  admin: Store,
): Promise<{ shedAtLbs: number[]; loopLagMaxMs: number[]; roomsPerServer: Record<string, number> }> {
  const metrics = await lbMetrics(lbs);
  const shedAtLbs = metrics.map(
    (text) => metric(text, /lb_joins_total\{[^}]*outcome="shed"[^}]*\} (\d+)/) ?? 0,
  );
  const loopLagMaxMs = metrics.map((text) =>
    round((metric(text, /^lb_nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)/m) ?? NaN) * 1000, 1),
  );
  const roomsPerServer: Record<string, number> = {};
  for (const region of SURVIVORS) {
    for (const room of await admin.rooms.list(region)) {
      if (room.id.startsWith('herd-'))
        roomsPerServer[room.serverId] = (roomsPerServer[room.serverId] ?? 0) + 1;
    }
  }
  return { shedAtLbs, loopLagMaxMs, roomsPerServer };
}

export async function run({ quick }: { quick: boolean }): Promise<void> {
  const plan = quick ? QUICK : FULL;
  const startedAt = new Date();
  progress(`herd: ${plan.herdClients} clients of ${DEAD_REGION} rejoin ${SURVIVORS.join(' and ')}`);
  const dynamo = await startCountedDynamo(SURVIVORS[0]);
  const admin: Store = dynamo.adminStore();
  const world: Survivors = { lbs: [], fleets: [] };
  const lifetime = new AbortController();
  // Every simulated client listens on it.
  setMaxListeners(0, lifetime.signal);
  const ctx: ClientContext = { lbs: world.lbs, platforms: [], channels: [], signal: lifetime.signal };
  try {
    const side = await startSurvivorRegions(dynamo, admin, world);
    const dead = await seedDeadRegion(admin, plan);
    await sleep(1_500); // the LBs' fleet caches see the fleet

    const sessions = await joinSurvivorCalls(side, world.lbs, plan);
    progress(`${sessions} survivor sessions live; killing ${DEAD_REGION}: the herd starts`);
    // Each loop's longest delay during the herd: the LBs' (a scrape starts their window over) and this
    // process's, which runs the herd's clients.
    await lbMetrics(world.lbs);
    const benchLoop = monitorEventLoopDelay({ resolution: 10 });
    benchLoop.enable();
    const herd = await runHerd(ctx, plan, dead, (reason) => lifetime.abort(reason));
    const calls = await side.stop();
    benchLoop.disable();
    const { shedAtLbs, loopLagMaxMs, roomsPerServer } = await lbFigures(world.lbs, admin);
    const loops = {
      lbMaxMs: Object.fromEntries(SURVIVORS.map((region, i) => [region, loopLagMaxMs[i]])),
      benchMaxMs: round(benchLoop.max / 1e6, 1),
    };
    report({ plan, quick, startedAt, herd, shedAtLbs, roomsPerServer, sessions, calls, loops });
  } finally {
    lifetime.abort(new Error('bench over'));
    for (const ch of ctx.channels) ch.close();
    for (const f of world.fleets) f.stop();
    await Promise.all(world.lbs.map((lb) => lb.stop()));
    await world.side?.close();
    for (const p of ctx.platforms) p.close();
    await dynamo.close();
  }
}

function report(r: {
  plan: HerdPlan;
  quick: boolean;
  startedAt: Date;
  herd: HerdOutcome;
  shedAtLbs: number[];
  roomsPerServer: Record<string, number>;
  sessions: number;
  calls: SurvivorCallsResult;
  loops: { lbMaxMs: Record<string, number | undefined>; benchMaxMs: number };
}): void {
  const { plan, herd, shedAtLbs } = r;
  const { affectedBy } = r.calls;
  const affected = Object.values(affectedBy).reduce((a, b) => a + b, 0);
  const { doneAt, failed } = herd;
  const allBackMs = doneAt.length === plan.herdClients ? Math.max(...doneAt) : NaN;
  const results = {
    plan,
    herd: {
      rejoined: doneAt.length,
      failed,
      failures: herd.failures,
      allRejoinedS: round(allBackMs / 1000, 2),
      rejoinedP50S: round(percentileOf(doneAt, 50) / 1000, 2),
      rejoinedP99S: round(percentileOf(doneAt, 99) / 1000, 2),
      joinAttemptMs: {
        p50: round(percentileOf(herd.stats.latenciesMs, 50), 1),
        p99: round(percentileOf(herd.stats.latenciesMs, 99), 1),
        max: round(Math.max(...herd.stats.latenciesMs), 1),
      },
      answers: herd.stats.answers,
      shedByLb: Object.fromEntries(SURVIVORS.map((region, i) => [region, shedAtLbs[i]])),
      roomsPerServer: r.roomsPerServer,
    },
    survivors: {
      sessions: r.sessions,
      affected,
      affectedBy,
      pingRttMs: {
        p50: round(percentileOf(r.calls.pingRtts, 50), 1),
        p99: round(percentileOf(r.calls.pingRtts, 99), 1),
        max: round(Math.max(...r.calls.pingRtts), 1),
      },
    },
    eventLoopDelayMaxMs: r.loops,
  };
  const result: BenchResult = {
    ...benchHeader('herd', r.quick, r.startedAt),
    results,
    targets: [
      { name: 'failed rejoins', target: '0', measured: String(failed), met: failed === 0 },
      {
        name: "survivors' sessions affected",
        target: '0',
        measured: String(affected),
        met: affected === 0,
      },
    ],
  };
  emit(result, [
    [
      'herd clients',
      'all rejoined',
      'p50',
      'p99',
      'failed',
      'join p99 (attempt)',
      'shed (503)',
      'survivor ping p99',
      'survivors affected',
    ],
    [
      plan.herdClients,
      `${results.herd.allRejoinedS} s`,
      `${results.herd.rejoinedP50S} s`,
      `${results.herd.rejoinedP99S} s`,
      failed,
      `${results.herd.joinAttemptMs.p99} ms`,
      shedAtLbs.reduce((a, b) => a + b, 0),
      `${results.survivors.pingRttMs.p99} ms`,
      affected,
    ],
  ]);
}
