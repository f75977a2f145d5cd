/**
 * `npm run bench -- join [--quick]`: what a join costs.
 *
 * One real LB process (runtime/lb/server.ts, production log level, stdout to /dev/null) against a real
 * dynalite in a process of its own, with four media servers that exist as heartbeated table items.
 * A closed-loop generator in this process drives `POST /v1/rooms/:roomId/join` at each concurrency:
 *   - warm: rooms that already exist (placed during setup) — the path of every peer after the first;
 *   - cold: a new room per join — the placement path with its conditional write;
 *   - floor: a bare fastify process with the same route shape and answer size, same concurrency.
 * DynamoDB requests are counted at the database (by operation and item kind), the LB's CPU time is read
 * from /proc/<pid>/stat before and after each run. Every process shares this machine's cores, so
 * joins/s and latency are those of a loaded 2-core box; CPU per join and requests per join are not.
 */
import * as path from 'node:path';
import type { RequestCounts } from './support/dynamoRequests';
import { diffCounts, joinPathRequests, totalRequests } from './support/dynamoRequests';
import { startCountedDynamo, type CountedDynamo } from './support/countedDynamo';
import { FakeFleet } from './support/fakeFleet';
import { BENCH_JOIN_KEYS, startLbProcess, type LbProcess } from './support/lbProcess';
import { closedLoop, summarizeLoad, type HttpRequestSpec, type LoadSummary } from './support/loadgen';
import {
  cpuMsOf,
  freePort,
  machineLoad,
  sleep,
  spawnTs,
  stopAll,
  untilReady,
  waitForHttp,
  type BenchChild,
} from './support/processes';
import { mintJoinTokens } from './support/tokens';
import { benchHeader, emit, progress, round, type BenchResult } from './report';

interface JoinPlan {
  readonly levels: readonly number[];
  readonly runMs: number;
  readonly warmRooms: number;
  /** Bounds the tokens minted per run; the run's duration ends it first in practice. */
  readonly maxJoinsPerRun: number;
  readonly idleMs: number;
}

const FULL: JoinPlan = {
  levels: [1, 8, 32, 64],
  runMs: 10_000,
  warmRooms: 500,
  maxJoinsPerRun: 30_000,
  idleMs: 5_000,
};
const QUICK: JoinPlan = {
  levels: [1, 8, 32],
  runMs: 3_000,
  warmRooms: 100,
  maxJoinsPerRun: 10_000,
  idleMs: 2_000,
};

/** The LB limits joins per token subject to 60 a minute; a warm token is used at most this often in all. */
const USES_PER_WARM_TOKEN = 50;
const MEDIA_SERVERS = 4;
/** Large enough that placement never runs out during the bench. */
const SERVER_CAPACITY = 1_000_000;
/** What a client measured sends: one RTT sample (exercises the body schema like a real join). */
const JOIN_BODY = JSON.stringify({ rtt: { 'eu-west-1': 12 } });
const WARMUP_MS = 2_000;

interface PathRun extends LoadSummary {
  readonly concurrency: number;
  readonly lbCpuMsPerJoin: number;
  readonly dbRequestsPerJoin: number;
  /** The LB's background loops (fleet refresh, region summary) during the run, not charged to joins. */
  readonly backgroundDbRequests: number;
  readonly dbRequests: RequestCounts;
  readonly sampleErrors: Record<string, string>;
}

interface FloorRun extends LoadSummary {
  readonly concurrency: number;
  readonly cpuMsPerRequest: number;
}

function joinRequest(room: string, token: string): HttpRequestSpec {
  return {
    method: 'POST',
    path: `/v1/rooms/${room}/join`,
    headers: { authorization: `Bearer ${token}` },
    body: JOIN_BODY,
  };
}

async function measureJoins(
  lb: LbProcess,
  dynamo: CountedDynamo,
  concurrency: number,
  plan: JoinPlan,
  next: (i: number) => HttpRequestSpec | null,
  maxRequests: number,
): Promise<PathRun> {
  const countsBefore = await dynamo.counts();
  const cpuBefore = cpuMsOf(lb.pid);
  const run = await closedLoop({
    baseUrl: lb.baseUrl,
    concurrency,
    durationMs: plan.runMs,
    maxRequests,
    next,
  });
  const cpuMs = cpuMsOf(lb.pid) - cpuBefore;
  const counts = diffCounts(await dynamo.counts(), countsBefore);
  const summary = summarizeLoad(run);
  const joinPath = joinPathRequests(counts);
  return {
    concurrency,
    ...summary,
    lbCpuMsPerJoin: round(cpuMs / Math.max(1, summary.ok), 3),
    dbRequestsPerJoin: round(joinPath / Math.max(1, summary.ok), 3),
    backgroundDbRequests: totalRequests(counts) - joinPath,
    dbRequests: counts,
    sampleErrors: run.sampleErrors,
  };
}

async function measureFloor(floor: { baseUrl: string; pid: number }, concurrency: number, plan: JoinPlan) {
  const request = joinRequest('room-0', 'x');
  const cpuBefore = cpuMsOf(floor.pid);
  const run = await closedLoop({
    baseUrl: floor.baseUrl,
    concurrency,
    durationMs: plan.runMs,
    maxRequests: Number.MAX_SAFE_INTEGER,
    next: () => request,
  });
  const cpuMs = cpuMsOf(floor.pid) - cpuBefore;
  const summary = summarizeLoad(run);
  return { concurrency, ...summary, cpuMsPerRequest: round(cpuMs / Math.max(1, summary.ok), 3) };
}

/** The bare fastify process: what the same route and answer size cost without the LB's work. */
interface Floor {
  readonly process: BenchChild;
  readonly baseUrl: string;
  readonly pid: number;
}

async function startFloor(): Promise<Floor> {
  const port = await freePort();
  const proc = spawnTs('bare fastify', path.join(__dirname, 'support', 'bareFastifyProcess.ts'), {
    env: { PORT: String(port) },
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await untilReady(proc, waitForHttp(`${baseUrl}/ping`));
  return { process: proc, baseUrl, pid: proc.pid };
}

/** The processes of the bench, filled in as they start so a failed start still stops the earlier ones. */
interface JoinRig {
  dynamo?: CountedDynamo;
  fleet?: FakeFleet;
  lb?: LbProcess;
  floor?: Floor;
}

interface Level {
  readonly concurrency: number;
  readonly floor: FloorRun;
  readonly warm: PathRun;
  readonly cold: PathRun;
  readonly ratios: Record<string, number>;
}

interface Idle {
  readonly seconds: number;
  readonly lbCpuMsPerSecond: number;
  readonly dbRequests: RequestCounts;
}

export async function run({ quick }: { quick: boolean }): Promise<void> {
  const plan = quick ? QUICK : FULL;
  const startedAt = new Date();
  const loadBefore = machineLoad();
  progress(
    `join bench (${quick ? 'quick' : 'full'}): levels ${plan.levels.join(', ')}, ${plan.runMs} ms per run`,
  );
  const rig: JoinRig = {};
  try {
    const { dynamo, fleet, lb, floor } = await startRig(rig);
    const warmRooms = await placeWarmRooms(lb, plan);
    const nextWarm = await warmJoins(warmRooms, plan);
    await closedLoop({
      baseUrl: lb.baseUrl,
      concurrency: 8,
      durationMs: WARMUP_MS,
      maxRequests: plan.maxJoinsPerRun,
      next: nextWarm,
    });
    const idle = await measureIdle(lb, dynamo, plan);
    const levels: Level[] = [];
    for (const concurrency of plan.levels) {
      levels.push(await measureLevel({ lb, dynamo, floor }, concurrency, plan, nextWarm));
    }
    emit(
      {
        ...benchHeader('join', quick, startedAt),
        results: {
          method:
            'closed-loop keep-alive HTTP/1.1 clients in the bench process; LB = runtime/lb/server.ts (LOG_LEVEL info, stdout to /dev/null); ' +
            'dynalite in its own process, requests counted there by operation:itemKind; LB CPU from /proc/<pid>/stat (10 ms ticks); ' +
            'floor = bare fastify process with the same route and answer size',
          machineLoad: { before: loadBefore, after: machineLoad() },
          mediaServers: MEDIA_SERVERS,
          warmRooms: plan.warmRooms,
          runMs: plan.runMs,
          idle,
          levels,
          fleetHeartbeats: fleet.stats,
        },
        targets: joinTargets(levels),
      },
      summaryRows(levels),
    );
  } finally {
    rig.fleet?.stop();
    await stopAll([rig.dynamo?.process, rig.lb?.process, rig.floor?.process]);
    await rig.dynamo?.close();
  }
}

/** Setup: dynalite, the heartbeated media servers, the LB and the floor process. */
async function startRig(rig: JoinRig): Promise<Required<JoinRig>> {
  const dynamo = (rig.dynamo = await startCountedDynamo());
  const fleet = (rig.fleet = new FakeFleet(
    dynamo.adminStore(),
    dynamo.region,
    Array.from({ length: MEDIA_SERVERS }, (_, i) => ({
      id: `bench-media-${i}`,
      endpoint: `ws://127.0.0.1:${9000 + i}`,
      capacity: SERVER_CAPACITY,
    })),
  ));
  await fleet.start();
  const lb = (rig.lb = await startLbProcess(dynamo));
  const floor = (rig.floor = await startFloor());
  progress(`LB pid ${lb.pid} at ${lb.baseUrl}, dynalite pid ${dynamo.process.pid}, floor pid ${floor.pid}`);
  return { dynamo, fleet, lb, floor };
}

/** Places the warm rooms through the LB itself (this also warms its JIT); returns their names. */
async function placeWarmRooms(lb: LbProcess, plan: JoinPlan): Promise<string[]> {
  const warmRooms = Array.from({ length: plan.warmRooms }, (_, i) => `warm-${i}`);
  const placeTokens = await mintJoinTokens(
    BENCH_JOIN_KEYS,
    warmRooms.map((room) => ({ sub: `placer-${room}`, room })),
  );
  const placed = await closedLoop({
    baseUrl: lb.baseUrl,
    concurrency: 8,
    durationMs: 60_000,
    maxRequests: warmRooms.length,
    next: (i) => joinRequest(warmRooms[i]!, placeTokens[i]!),
  });
  if ((placed.byStatus['200'] ?? 0) !== warmRooms.length) {
    throw new Error(
      `placing the warm rooms failed: ${JSON.stringify(placed.byStatus)} ${JSON.stringify(placed.sampleErrors)}`,
    );
  }
  return warmRooms;
}

/**
 * Warm joins for every run of the bench: a pool of tokens over the warm rooms, used in turn, each at
 * most USES_PER_WARM_TOKEN times so the LB's per-subject join limit is never what is measured.
 */
async function warmJoins(warmRooms: readonly string[], plan: JoinPlan): Promise<() => HttpRequestSpec> {
  const warmPoolSize = Math.ceil(((plan.levels.length + 1) * plan.maxJoinsPerRun) / USES_PER_WARM_TOKEN);
  progress(`minting ${warmPoolSize} warm join tokens`);
  const warmSpecs = Array.from({ length: warmPoolSize }, (_, i) => ({
    sub: `warm-peer-${i}`,
    room: warmRooms[i % warmRooms.length]!,
  }));
  const warmTokens = await mintJoinTokens(BENCH_JOIN_KEYS, warmSpecs);
  let warmUses = 0;
  return () => {
    const i = warmUses++ % warmPoolSize;
    return joinRequest(warmSpecs[i]!.room, warmTokens[i]!);
  };
}

/** What the LB's background loops cost without joins. */
async function measureIdle(lb: LbProcess, dynamo: CountedDynamo, plan: JoinPlan): Promise<Idle> {
  const idleCpuBefore = cpuMsOf(lb.pid);
  const idleCountsBefore = await dynamo.counts();
  await sleep(plan.idleMs);
  const idle = {
    seconds: plan.idleMs / 1000,
    lbCpuMsPerSecond: round((cpuMsOf(lb.pid) - idleCpuBefore) / (plan.idleMs / 1000), 2),
    dbRequests: diffCounts(await dynamo.counts(), idleCountsBefore),
  };
  progress(`idle LB: ${idle.lbCpuMsPerSecond} CPU ms/s, DB ${JSON.stringify(idle.dbRequests)}`);
  return idle;
}

/** One concurrency level: the floor, then warm joins, then cold joins (new rooms), in that order. */
async function measureLevel(
  rig: { readonly lb: LbProcess; readonly dynamo: CountedDynamo; readonly floor: Floor },
  concurrency: number,
  plan: JoinPlan,
  nextWarm: () => HttpRequestSpec,
): Promise<Level> {
  const { lb, dynamo } = rig;
  const floorRun = await measureFloor(rig.floor, concurrency, plan);
  progress(
    `c=${concurrency} floor: ${floorRun.perSecond}/s p50 ${floorRun.p50Ms} ms, ${floorRun.cpuMsPerRequest} CPU ms/req`,
  );
  const warm = await measureJoins(lb, dynamo, concurrency, plan, nextWarm, plan.maxJoinsPerRun);
  progress(
    `c=${concurrency} warm: ${warm.perSecond}/s p50 ${warm.p50Ms} p99 ${warm.p99Ms} ms, ${warm.lbCpuMsPerJoin} CPU ms/join, ${warm.dbRequestsPerJoin} DB req/join ${JSON.stringify(warm.byStatus)}`,
  );
  // Cold joins run no faster than warm ones: mint what the warm rate would need, with slack.
  const coldCount = Math.min(
    plan.maxJoinsPerRun,
    Math.ceil(warm.perSecond * (plan.runMs / 1000) * 1.5) + 100,
  );
  const coldSpecs = Array.from({ length: coldCount }, (_, i) => ({
    sub: `cold-peer-${concurrency}-${i}`,
    room: `cold-${concurrency}-${i}`,
  }));
  const coldTokens = await mintJoinTokens(BENCH_JOIN_KEYS, coldSpecs);
  const cold = await measureJoins(
    lb,
    dynamo,
    concurrency,
    plan,
    (i) => (i < coldCount ? joinRequest(coldSpecs[i]!.room, coldTokens[i]!) : null),
    coldCount,
  );
  progress(
    `c=${concurrency} cold: ${cold.perSecond}/s p50 ${cold.p50Ms} p99 ${cold.p99Ms} ms, ${cold.lbCpuMsPerJoin} CPU ms/join, ${cold.dbRequestsPerJoin} DB req/join ${JSON.stringify(cold.byStatus)}`,
  );
  return {
    concurrency,
    floor: floorRun,
    warm,
    cold,
    ratios: {
      warmCpuToFloor: round(warm.lbCpuMsPerJoin / floorRun.cpuMsPerRequest, 1),
      warmThroughputToFloor: round(warm.perSecond / floorRun.perSecond, 3),
      warmP50ToFloor: round(warm.p50Ms / floorRun.p50Ms, 1),
    },
  };
}

function joinTargets(levels: readonly Level[]): BenchResult['targets'] {
  const top = levels[levels.length - 1]!;
  const worstWarmDb = Math.max(...levels.map((l) => l.warm.dbRequestsPerJoin));
  return [
    {
      name: 'DynamoDB requests per warm join',
      target: '<= 2',
      measured: `${worstWarmDb} (worst level; cold: ${Math.max(...levels.map((l) => l.cold.dbRequestsPerJoin))})`,
      met: worstWarmDb <= 2,
    },
    {
      name: `LB CPU per warm join at c=${top.concurrency}`,
      target: '<= 0.5 ms',
      // The loaded LB is where CPU is scarce; a lone join (c=1) pays one SDK call by itself.
      measured:
        `${top.warm.lbCpuMsPerJoin} ms (c=${levels[0]!.concurrency}: ${levels[0]!.warm.lbCpuMsPerJoin} ms; ` +
        `cold ${top.cold.lbCpuMsPerJoin} ms; floor ${top.floor.cpuMsPerRequest} ms/req)`,
      met: top.warm.lbCpuMsPerJoin <= 0.5,
    },
  ];
}

function summaryRows(levels: readonly Level[]): (string | number)[][] {
  return [
    ['c', 'path', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req', 'DB req/join', 'non-2xx'],
    ...levels.flatMap((l) => [
      [
        l.concurrency,
        'floor',
        l.floor.perSecond,
        l.floor.p50Ms,
        l.floor.p99Ms,
        l.floor.cpuMsPerRequest,
        '-',
        nonOk(l.floor),
      ],
      [
        l.concurrency,
        'warm',
        l.warm.perSecond,
        l.warm.p50Ms,
        l.warm.p99Ms,
        l.warm.lbCpuMsPerJoin,
        l.warm.dbRequestsPerJoin,
        nonOk(l.warm),
      ],
      [
        l.concurrency,
        'cold',
        l.cold.perSecond,
        l.cold.p50Ms,
        l.cold.p99Ms,
        l.cold.lbCpuMsPerJoin,
        l.cold.dbRequestsPerJoin,
        nonOk(l.cold),
      ],
    ]),
  ];
}

function nonOk(s: LoadSummary): number {
  return s.requests - s.ok;
}
