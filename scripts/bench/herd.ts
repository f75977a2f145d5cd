/**
 * `npm run bench -- herd [--quick]`: a killed region's clients rejoin the two survivors at once.
 *
 * Two survivor regions, each one real LB process (runtime/lb/server.ts bundled as the image runs it)
 * with two media servers; one dynalite holds the table for both (a global table with no replication
 * lag: the herd's cost, not replication, is measured). The media servers are signaling stand-ins in
 * this process (they answer `join` and `ping`; no media) registered and heartbeated as table items, so
 * each join goes through the LB's whole path: token check, placement and takeover with conditional
 * writes, media token, WebSocket relay to the server. The killed region's two servers are items whose
 * heartbeats stopped, holding every room of the herd.
 *
 * - Survivors' own calls: 100 clients per survivor joined before the herd, their signaling open and
 *   pinged every 500 ms (the SDK's period) through the LBs during the herd; a lost socket or a ping
 *   unanswered within 3 s (the SDK's pong timeout) counts as an affected session.
 * - The herd: N clients (2 per room), half arriving through each survivor's LB (DNS latency routing),
 *   each the SDK's own code (ApiClient, requestJoin, SignalingChannel, the outage policy of
 *   retryUntilConnected with its jittered backoff and Retry-After) rejoining with the dead server
 *   excluded, all detecting the loss within the same 100 ms.
 *
 * Reported: time until every herd client is rejoined (signaling joined on a live server), join
 * latency (each HTTP attempt) p50/p99, answers by status and code (what the LBs shed), failed
 * rejoins, and the survivors' ping RTT p99 and affected sessions.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { ApiClient } from '../../runtime/client/ApiClient';
import { ApiUnavailableError, type Attempt } from '../../runtime/client/errors';
import { requestJoin } from '../../runtime/client/joinApi';
import { nodePlatform } from '../../runtime/client/nodePlatform';
import { outageAfterLoss, retryUntilConnected } from '../../runtime/client/outage';
import { SignalingChannel } from '../../runtime/client/SignalingChannel';
import { SIGNALING_SUBPROTOCOL } from '../../runtime/protocol/subprotocol';
import type { Store } from '../../runtime/store';
import { startCountedDynamo } from './support/countedDynamo';
import { FakeFleet } from './support/fakeFleet';
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
/** The SDK's defaults (runtime/client/config.ts). */
const TIMEOUTS = { attemptMs: 3_000, hedgeMs: 1_000, requestMs: 10_000, pingMs: 500, pongTimeoutMs: 3_000 };
const BACKOFF = { baseMs: 500, capMs: 10_000 };
const MAX_ATTEMPTS = 30;
/** Clients notice the loss within this window (socket close, all at once). */
const DETECTION_SPREAD_MS = 100;

/** A media server stand-in: answers `join` and `ping` on any signaling socket the LB relays to it. */
async function startSignalingStandIn(): Promise<{
  url: string;
  sockets: () => number;
  close(): Promise<void>;
}> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, handleProtocols: () => SIGNALING_SUBPROTOCOL });
  let open = 0;
  wss.on('connection', (ws) => {
    open++;
    ws.on('close', () => open--);
    ws.on('message', (raw) => {
      const { id, method } = JSON.parse(raw.toString()) as { id: number; method: string };
      const data =
        method === 'join'
          ? { peerId: randomUUID(), roomId: 'r', serverId: 's', region: 'r', routerRtpCapabilities: {} }
          : {};
      ws.send(JSON.stringify({ id, ok: true, data }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets: () => open,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => server.close(() => resolve())));
    },
  };
}

interface JoinStats {
  readonly latenciesMs: number[];
  readonly answers: Record<string, number>;
}

/**
 * Each simulated client has its own source address (127.1.x.y; Linux answers the whole 127/8 on
 * loopback), as real clients have: the LB caps relays per address, and one address for every client
 * would measure that cap instead of the herd.
 */
function clientAddress(i: number): string {
  return `127.1.${(i >> 8) & 255}.${(i & 255) + 1 > 254 ? 254 : (i & 255) + 1}`;
}

/** One simulated client: joins through `lbUrl` with the SDK's code and keeps its signaling open. */
async function connectClient(opts: {
  lbUrl: string;
  index: number;
  platforms: Array<ReturnType<typeof nodePlatform>>;
  room: string;
  token: string;
  exclude?: string;
  stats: JoinStats;
  signal: AbortSignal;
}): Promise<SignalingChannel> {
  const platform = nodePlatform({ localAddress: clientAddress(opts.index) });
  opts.platforms.push(platform);
  const api = new ApiClient({
    http: platform.http,
    apiUrls: [opts.lbUrl],
    ...TIMEOUTS,
    primaryReprobeMs: 60_000,
  });
  countServed(api, opts.stats);
  const attempt = async () => {
    const { answer } = await requestJoin(
      api,
      opts.room,
      opts.token,
      opts.exclude ? { exclude: { serverIds: [opts.exclude] } } : {},
      { signal: opts.signal },
    ).catch((err: unknown) => {
      // No URL answered usably (a shed 503 among them): `served` is not emitted, count here.
      if (err instanceof ApiUnavailableError) countAttempts(err.attempts, opts.stats);
      throw err;
    });
    const channel = await SignalingChannel.open({
      openSocket: platform.openSocket,
      url: answer.signalingUrl,
      mediaToken: answer.mediaToken,
      openTimeoutMs: TIMEOUTS.attemptMs,
      requestTimeoutMs: TIMEOUTS.requestMs,
      pingMs: 3_600_000,
      pongTimeoutMs: TIMEOUTS.pongTimeoutMs,
      signal: opts.signal,
    });
    await channel.request('join', { token: answer.mediaToken });
    return channel;
  };
  const outage = outageAfterLoss('signaling_closed', opts.exclude ?? 'none');
  const { result } = await retryUntilConnected({
    outage,
    maxAttempts: MAX_ATTEMPTS,
    backoffFirst: opts.exclude !== undefined,
    backoff: BACKOFF,
    signal: opts.signal,
    attempt,
  });
  return result;
}

function countServed(api: ApiClient, stats: JoinStats): void {
  api.on('served', ({ attempts }) => countAttempts(attempts, stats));
}

function countAttempts(attempts: readonly Attempt[], stats: JoinStats): void {
  for (const a of attempts) {
    stats.latenciesMs.push(a.elapsedMs);
    const key = a.status ? String(a.status) : a.outcome;
    stats.answers[key] = (stats.answers[key] ?? 0) + 1;
  }
}

/** The two survivor regions: their media stand-ins, fleets' heartbeats and LB processes. */
interface Survivors {
  readonly lbs: LbProcess[];
  readonly standIns: Array<Awaited<ReturnType<typeof startSignalingStandIn>>>;
  readonly fleets: FakeFleet[];
}

async function startSurvivorRegions(
  dynamo: Awaited<ReturnType<typeof startCountedDynamo>>,
  admin: Store,
  world: Survivors,
): Promise<void> {
  for (const region of SURVIVORS) {
    const servers = [];
    for (let i = 0; i < 2; i++) {
      const standIn = await startSignalingStandIn();
      world.standIns.push(standIn);
      servers.push({ id: `${region}-m${i}`, endpoint: standIn.url, capacity: 1_000_000 });
    }
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

/** The survivors' own calls, joined before the herd and pinged at the SDK's period until `stop()`. */
async function joinSurvivorCalls(
  ctx: ClientContext,
  plan: HerdPlan,
): Promise<{ sessions: number; pingRtts: number[]; stop(): Promise<number> }> {
  const stats: JoinStats = { latenciesMs: [], answers: {} };
  const tokens = await mintJoinTokens(
    BENCH_JOIN_KEYS,
    Array.from({ length: plan.survivorClientsPerRegion * 2 }, (_, i) => ({
      sub: `local-${i}`,
      room: `local-${i >> 1}`,
    })),
  );
  const sessions = await Promise.all(
    tokens.map((token, i) =>
      connectClient({
        lbUrl: ctx.lbs[i % 2]!.baseUrl,
        index: i,
        platforms: ctx.platforms,
        room: `local-${i >> 1}`,
        token,
        stats,
        signal: ctx.signal,
      }),
    ),
  );
  ctx.channels.push(...sessions);
  const pingRtts: number[] = [];
  const affected = new Set<number>();
  for (const [i, ch] of sessions.entries()) ch.on('lost', () => affected.add(i));
  const pinger = setInterval(() => {
    for (const [i, ch] of sessions.entries()) {
      if (!ch.isOpen) continue;
      const sent = performance.now();
      ch.request('ping', {}).then(
        () => {
          const rtt = performance.now() - sent;
          pingRtts.push(rtt);
          if (rtt > TIMEOUTS.pongTimeoutMs) affected.add(i);
        },
        () => affected.add(i),
      );
    }
  }, TIMEOUTS.pingMs);
  return {
    sessions: sessions.length,
    pingRtts,
    // The pings in flight get their pong timeout's worth to come back.
    stop: async () => {
      await sleep(2 * TIMEOUTS.pingMs);
      clearInterval(pinger);
      return affected.size;
    },
  };
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

/** Joins each LB shed (its own counter), and where the herd's rooms landed. */
async function placementFigures(
  lbs: readonly LbProcess[],
  admin: Store,
): Promise<{ shedAtLbs: number[]; roomsPerServer: Record<string, number> }> {
  const metrics = await Promise.all(lbs.map((lb) => fetch(`${lb.baseUrl}/metrics`).then((r) => r.text())));
  const shedAtLbs = metrics.map((text) => {
    const m = /lb_joins_total\{[^}]*outcome="shed"[^}]*\} (\d+)/.exec(text);
    return m ? Number(m[1]) : 0;
  });
  const roomsPerServer: Record<string, number> = {};
  for (const region of SURVIVORS) {
    for (const room of await admin.rooms.list(region)) {
      if (room.id.startsWith('herd-'))
        roomsPerServer[room.serverId] = (roomsPerServer[room.serverId] ?? 0) + 1;
    }
  }
  return { shedAtLbs, roomsPerServer };
}

export async function run({ quick }: { quick: boolean }): Promise<void> {
  const plan = quick ? QUICK : FULL;
  const startedAt = new Date();
  progress(`herd: ${plan.herdClients} clients of ${DEAD_REGION} rejoin ${SURVIVORS.join(' and ')}`);
  const dynamo = await startCountedDynamo(SURVIVORS[0]);
  const admin: Store = dynamo.adminStore();
  const world: Survivors = { lbs: [], standIns: [], fleets: [] };
  const lifetime = new AbortController();
  // Every simulated client listens on it.
  setMaxListeners(0, lifetime.signal);
  const ctx: ClientContext = { lbs: world.lbs, platforms: [], channels: [], signal: lifetime.signal };
  try {
    await startSurvivorRegions(dynamo, admin, world);
    const dead = await seedDeadRegion(admin, plan);
    await sleep(1_500); // the LBs' fleet caches see the fleet

    const calls = await joinSurvivorCalls(ctx, plan);
    progress(`${calls.sessions} survivor sessions live; killing ${DEAD_REGION}: the herd starts`);
    const herd = await runHerd(ctx, plan, dead, (reason) => lifetime.abort(reason));
    const affected = await calls.stop();
    const { shedAtLbs, roomsPerServer } = await placementFigures(world.lbs, admin);
    report({ plan, quick, startedAt, herd, shedAtLbs, roomsPerServer, affected, calls });
  } finally {
    lifetime.abort(new Error('bench over'));
    for (const ch of ctx.channels) ch.close();
    for (const f of world.fleets) f.stop();
    await Promise.all(world.lbs.map((lb) => lb.stop()));
    await Promise.all(world.standIns.map((s) => s.close()));
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
  affected: number;
  calls: { sessions: number; pingRtts: number[] };
}): void {
  const { plan, herd, shedAtLbs, affected } = r;
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
      sessions: r.calls.sessions,
      affected,
      pingRttMs: {
        p50: round(percentileOf(r.calls.pingRtts, 50), 1),
        p99: round(percentileOf(r.calls.pingRtts, 99), 1),
      },
    },
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
