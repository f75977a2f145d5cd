/**
 * `npm run bench -- placement [--quick]`: how evenly the LB spreads rooms over equal media servers.
 *
 * Each scenario starts a fresh dynalite and one or more real LB processes, registers equal media servers
 * as table items and places a fixed, seeded sequence of rooms through `POST /v1/rooms/:roomId/join` (one
 * join per room, the one that places it, sent to the LBs in turn as the region's load balancer would) at
 * a given arrival rate. The bench plays the media servers: a room's load units (runtime/media/LoadMeter.ts
 * units, 2p² for p peers) land on the server the LB answered as soon as the answer arrives (peers
 * connecting at once: the kindest case for placement), and each server reports its load and room count
 * the way runtime/media/Registrar.ts does (a heartbeat every 2 s, at once when it crosses its capacity).
 * Capacity is set so the fleet ends 80% full. Scored on the true loads the bench holds: max/mean across
 * servers, servers over capacity, and joins refused while some server had room.
 */
import { startCountedDynamo, type CountedDynamo } from './support/countedDynamo';
import { FakeFleet } from './support/fakeFleet';
import { BENCH_JOIN_KEYS, startLbProcess, type LbProcess } from './support/lbProcess';
import {
  balanceOf,
  capacityExists,
  ROOM_SIZES,
  roomLoadUnits,
  seededRandom,
  type BalanceStats,
} from './support/placementModel';
import { machineLoad, sleep, stopAll } from './support/processes';
import { mintJoinTokens } from './support/tokens';
import { benchHeader, emit, progress, round, type BenchResult } from './report';

interface Scenario {
  /** Arrival rate in rooms per second; 'max' is a closed loop of MAX_RATE_CONCURRENCY clients. */
  readonly rate: number | 'max';
  /**
   * LB processes sharing the region. Each places on its own cached view and sees only its own recent
   * rooms, so several LBs are where a stale view hurts most (a region runs lbDesiredCount of them).
   */
  readonly lbs: number;
}

interface PlacementPlan {
  readonly rooms: number;
  readonly servers: number;
  readonly scenarios: readonly Scenario[];
}

const FULL: PlacementPlan = {
  rooms: 2_000,
  servers: 16,
  scenarios: [
    { rate: 20, lbs: 1 },
    { rate: 100, lbs: 1 },
    { rate: 'max', lbs: 1 },
    { rate: 100, lbs: 4 },
  ],
};
const QUICK: PlacementPlan = {
  rooms: 300,
  servers: 8,
  scenarios: [
    { rate: 20, lbs: 1 },
    { rate: 'max', lbs: 1 },
  ],
};

const FINAL_FILL = 0.8;
const MAX_RATE_CONCURRENCY = 16;
const SEED = 20_240_601;
/** Fractions of the sequence at which the spread is sampled (it can be worse midway than at the end). */
const CHECKPOINTS = [0.25, 0.5, 0.75, 1] as const;
/** A paced arrival falling this far behind its schedule means the LB cannot take the rate. */
const JOIN_TIMEOUT_MS = 30_000;

interface RoomArrival {
  readonly id: string;
  readonly peers: number;
  readonly units: number;
  readonly token: string;
}

interface ScenarioResult {
  readonly rate: number | 'max';
  readonly lbs: number;
  readonly achievedRoomsPerSecond: number;
  readonly capacityPerServer: number;
  readonly placed: number;
  readonly refusedWithCapacity: number;
  readonly refusedFleetFull: number;
  readonly otherErrors: Record<string, number>;
  readonly final: BalanceStats;
  readonly checkpoints: Array<{ rooms: number } & BalanceStats>;
  readonly worstMaxOverMean: number;
  readonly perServerLoad: number[];
  readonly sampleErrors: Record<string, string>;
}

async function roomSequence(plan: PlacementPlan): Promise<RoomArrival[]> {
  const random = seededRandom(SEED);
  const specs = Array.from({ length: plan.rooms }, (_, i) => {
    const peers = ROOM_SIZES[Math.floor(random() * ROOM_SIZES.length)]!;
    return { id: `place-${i}`, peers, units: roomLoadUnits(peers) };
  });
  const tokens = await mintJoinTokens(
    BENCH_JOIN_KEYS,
    specs.map((s) => ({ sub: `creator-${s.id}`, room: s.id })),
  );
  return specs.map((s, i) => ({ ...s, token: tokens[i]! }));
}

/** The processes of one scenario, filled in as they start so a failed start still stops the earlier ones. */
interface ScenarioRig {
  dynamo?: CountedDynamo;
  fleet?: FakeFleet;
  readonly lbs: LbProcess[];
}

async function runScenario(
  plan: PlacementPlan,
  rooms: readonly RoomArrival[],
  { rate, lbs: lbCount }: Scenario,
): Promise<ScenarioResult> {
  const totalUnits = rooms.reduce((s, r) => s + r.units, 0);
  const capacity = Math.ceil(totalUnits / (plan.servers * FINAL_FILL));
  const rig: ScenarioRig = { lbs: [] };
  try {
    const fleet = await startScenarioRig(rig, plan.servers, lbCount, capacity);
    const tally = new PlacementTally(fleet, capacity, rooms.length);
    let sent = 0;
    // One join per room, sent to the LBs in turn as the region's load balancer would.
    const place = async (room: RoomArrival) => {
      const lb = rig.lbs[sent++ % rig.lbs.length]!;
      tally.record(room, await joinOnce(lb, room));
    };

    const t0 = performance.now();
    await sendArrivals(rooms, rate, t0, place);
    const seconds = (performance.now() - t0) / 1000;
    return {
      rate,
      lbs: lbCount,
      achievedRoomsPerSecond: round(rooms.length / seconds, 1),
      capacityPerServer: capacity,
      ...tally.counters,
      otherErrors: tally.otherErrors,
      final: balanceOf(tally.loads(), capacity),
      checkpoints: tally.checkpoints,
      worstMaxOverMean: Math.max(...tally.checkpoints.map((c) => c.maxOverMean)),
      perServerLoad: tally.loads(),
      sampleErrors: tally.sampleErrors,
    };
  } finally {
    rig.fleet?.stop();
    await stopAll([rig.dynamo?.process, ...rig.lbs.map((lb) => lb.process)]);
    await rig.dynamo?.close();
  }
}

/** A fresh dynalite, `servers` equal media servers heartbeated by the bench, `lbCount` LB processes. */
async function startScenarioRig(
  rig: ScenarioRig,
  servers: number,
  lbCount: number,
  capacity: number,
): Promise<FakeFleet> {
  const dynamo = (rig.dynamo = await startCountedDynamo());
  const fleet = (rig.fleet = new FakeFleet(
    dynamo.adminStore(),
    dynamo.region,
    Array.from({ length: servers }, (_, i) => ({
      id: `media-${String(i).padStart(2, '0')}`,
      endpoint: `ws://127.0.0.1:${9000 + i}`,
      capacity,
    })),
  ));
  await fleet.start();
  for (let i = 0; i < lbCount; i++) rig.lbs.push(await startLbProcess(dynamo));
  return fleet;
}

/** The join that places `room`: its status (or `network:<error>`) and body. */
async function joinOnce(lb: LbProcess, room: RoomArrival): Promise<{ status: string; body: string }> {
  try {
    const res = await fetch(`${lb.baseUrl}/v1/rooms/${room.id}/join`, {
      method: 'POST',
      headers: { authorization: `Bearer ${room.token}`, 'content-type': 'application/json' },
      body: '{}',
      signal: AbortSignal.timeout(JOIN_TIMEOUT_MS),
    });
    return { status: String(res.status), body: await res.text() };
  } catch (err) {
    return { status: `network:${(err as Error).name}`, body: (err as Error).message };
  }
}

/**
 * `max`: MAX_RATE_CONCURRENCY clients each send the next room as soon as their last one is answered.
 * A rate: arrivals on a fixed schedule from `t0`, whatever the answers take (an open loop, as real
 * rooms arrive).
 */
async function sendArrivals(
  rooms: readonly RoomArrival[],
  rate: number | 'max',
  t0: number,
  place: (room: RoomArrival) => Promise<void>,
): Promise<void> {
  if (rate === 'max') {
    let next = 0;
    await Promise.all(
      Array.from({ length: MAX_RATE_CONCURRENCY }, async () => {
        while (next < rooms.length) await place(rooms[next++]!);
      }),
    );
    return;
  }
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < rooms.length; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    inflight.push(place(rooms[i]!));
    if (i % Math.max(1, Math.round(rate * 5)) === 0) progress(`  ${i}/${rooms.length} rooms sent`);
  }
  await Promise.all(inflight);
}

/**
 * Scores each answer on the true loads the bench holds: a placed room's units land on its server at
 * once, and a refusal counts against placement only when some server still had room for it.
 */
class PlacementTally {
  readonly counters = { placed: 0, refusedWithCapacity: 0, refusedFleetFull: 0 };
  readonly otherErrors: Record<string, number> = {};
  readonly sampleErrors: Record<string, string> = {};
  readonly checkpoints: ScenarioResult['checkpoints'] = [];
  private readonly ids: string[];
  private answered = 0;

  constructor(
    private readonly fleet: FakeFleet,
    private readonly capacity: number,
    private readonly totalRooms: number,
  ) {
    this.ids = fleet.servers.map((s) => s.id);
  }

  loads(): number[] {
    return this.ids.map((id) => this.fleet.load(id));
  }

  record(room: RoomArrival, { status, body }: { status: string; body: string }): void {
    if (status === '200') {
      this.fleet.addRoom((JSON.parse(body) as { serverId: string }).serverId, room.units);
      this.counters.placed++;
    } else if (status === '503' && body.includes('no_capacity')) {
      if (capacityExists(this.loads(), this.capacity, room.units)) this.counters.refusedWithCapacity++;
      else this.counters.refusedFleetFull++;
    } else {
      this.otherErrors[status] = (this.otherErrors[status] ?? 0) + 1;
      this.sampleErrors[status] ??= body.slice(0, 300);
    }
    this.answered++;
    const checkpoint = CHECKPOINTS.find((c) => Math.round(c * this.totalRooms) === this.answered);
    if (checkpoint !== undefined)
      this.checkpoints.push({ rooms: this.answered, ...balanceOf(this.loads(), this.capacity) });
  }
}

/** `100 rooms/s`, `max rate (164.8/s)`, `100 rooms/s over 4 LBs`. */
function scenarioLabel({ rate, lbs }: Scenario, achievedRoomsPerSecond?: number): string {
  const pace =
    rate !== 'max'
      ? `${rate} rooms/s`
      : achievedRoomsPerSecond === undefined
        ? `as fast as ${MAX_RATE_CONCURRENCY} clients go`
        : `max rate (${achievedRoomsPerSecond}/s)`;
  return lbs === 1 ? pace : `${pace} over ${lbs} LBs`;
}

export async function run({ quick }: { quick: boolean }): Promise<void> {
  const plan = quick ? QUICK : FULL;
  const startedAt = new Date();
  const loadBefore = machineLoad();
  progress(
    `placement bench (${quick ? 'quick' : 'full'}): ${plan.rooms} rooms over ${plan.servers} servers, ` +
      plan.scenarios.map((s) => scenarioLabel(s)).join('; '),
  );
  const rooms = await roomSequence(plan);
  const scenarios: ScenarioResult[] = [];
  for (const scenario of plan.scenarios) {
    progress(`scenario: ${scenarioLabel(scenario)}`);
    const s = await runScenario(plan, rooms, scenario);
    progress(
      `  placed ${s.placed} at ${s.achievedRoomsPerSecond}/s: max/mean ${s.final.maxOverMean} (worst midway ${s.worstMaxOverMean}), ` +
        `${s.final.overCapacity} servers over capacity, ${s.refusedWithCapacity} refused with capacity left`,
    );
    scenarios.push(s);
  }

  const result: BenchResult = {
    ...benchHeader('placement', quick, startedAt),
    results: {
      method:
        'real LB processes (joins sent to them in turn) + dynalite; media servers are table items heartbeated by the bench every 2 s (at once on crossing capacity); ' +
        "a room's 2p² load units land on its server when the join answers; one join per room; true loads scored",
      machineLoad: { before: loadBefore, after: machineLoad() },
      rooms: plan.rooms,
      servers: plan.servers,
      roomSizes: ROOM_SIZES,
      seed: SEED,
      finalFill: FINAL_FILL,
      scenarios,
    },
    targets: scenarios.flatMap(scenarioTargets),
  };
  emit(result, summaryRows(scenarios));
}

function scenarioTargets(s: ScenarioResult): BenchResult['targets'] {
  const label = scenarioLabel(s, s.achievedRoomsPerSecond);
  return [
    {
      name: `max/mean load, ${label}`,
      target: '<= 1.25',
      measured: `${s.final.maxOverMean} (worst checkpoint ${s.worstMaxOverMean})`,
      met: s.final.maxOverMean <= 1.25,
    },
    {
      name: `refused with capacity left, ${label}`,
      target: '0',
      measured: String(s.refusedWithCapacity),
      met: s.refusedWithCapacity === 0,
    },
  ];
}

function summaryRows(scenarios: readonly ScenarioResult[]): (string | number)[][] {
  return [
    [
      'rate',
      'LBs',
      'rooms/s',
      'placed',
      'max/mean',
      'worst midway',
      'min',
      'max',
      'cap',
      'over cap',
      'refused w/ cap',
    ],
    ...scenarios.map((s) => [
      String(s.rate),
      s.lbs,
      s.achievedRoomsPerSecond,
      s.placed,
      s.final.maxOverMean,
      s.worstMaxOverMean,
      s.final.minLoad,
      s.final.maxLoad,
      s.capacityPerServer,
      s.final.overCapacity,
      s.refusedWithCapacity,
    ]),
  ];
}
