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

export async function run({ quick }: { quick: boolean }): Promise<void> {
  const plan = quick ? QUICK : FULL;
  const startedAt = new Date();
  progress(`herd: ${plan.herdClients} clients of ${DEAD_REGION} rejoin ${SURVIVORS.join(' and ')}`);
  const dynamo = await startCountedDynamo(SURVIVORS[0]);
  const admin: Store = dynamo.adminStore();
  const standIns: Array<Awaited<ReturnType<typeof startSignalingStandIn>>> = [];
  const fleets: FakeFleet[] = [];
  const lbs: LbProcess[] = [];
  const platforms: Array<ReturnType<typeof nodePlatform>> = [];
  const lifetime = new AbortController();
  // Every simulated client listens on it.
  setMaxListeners(0, lifetime.signal);
  const channels: SignalingChannel[] = [];
  try {
    for (const region of SURVIVORS) {
      const servers = [];
      for (let i = 0; i < 2; i++) {
        const standIn = await startSignalingStandIn();
        standIns.push(standIn);
        servers.push({ id: `${region}-m${i}`, endpoint: standIn.url, capacity: 1_000_000 });
      }
      const fleet = new FakeFleet(admin, region, servers);
      await fleet.start();
      fleets.push(fleet);
    }
    for (const region of SURVIVORS) lbs.push(await startLbProcess(dynamo, { region, logLevel: 'warn' }));
    for (const [i, region] of SURVIVORS.entries()) {
      await admin.regions.putSummary({
        region,
        apiUrl: lbs[i]!.baseUrl,
        liveServers: 2,
        load: 0,
        capacity: 2_000_000,
        reportedAt: Date.now(),
      });
    }
    // The killed region: two servers whose heartbeats stopped a minute ago, holding every herd room.
    const deadServers = [0, 1].map((i) => `${DEAD_REGION}-m${i}`);
    for (const id of deadServers) {
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
      await admin.rooms.place({ roomId: room, serverId: deadServers[i % 2]!, region: DEAD_REGION });
    }
    await sleep(1_500); // the LBs' fleet caches see the fleet

    // Survivors' own calls, joined before the herd and pinged through it.
    const survivorStats: JoinStats = { latenciesMs: [], answers: {} };
    const survivorTokens = await mintJoinTokens(
      BENCH_JOIN_KEYS,
      Array.from({ length: plan.survivorClientsPerRegion * 2 }, (_, i) => ({
        sub: `local-${i}`,
        room: `local-${i >> 1}`,
      })),
    );
    const survivors = await Promise.all(
      survivorTokens.map((token, i) =>
        connectClient({
          lbUrl: lbs[i % 2]!.baseUrl,
          index: i,
          platforms,
          room: `local-${i >> 1}`,
          token,
          stats: survivorStats,
          signal: lifetime.signal,
        }),
      ),
    );
    channels.push(...survivors);
    let affected = 0;
    const pingRtts: number[] = [];
    const affectedSet = new Set<number>();
    for (const [i, ch] of survivors.entries()) ch.on('lost', () => affectedSet.add(i));
    const pinger = setInterval(() => {
      for (const [i, ch] of survivors.entries()) {
        if (!ch.isOpen) continue;
        const sent = performance.now();
        ch.request('ping', {}).then(
          () => {
            const rtt = performance.now() - sent;
            pingRtts.push(rtt);
            if (rtt > TIMEOUTS.pongTimeoutMs) affectedSet.add(i);
          },
          () => affectedSet.add(i),
        );
      }
    }, TIMEOUTS.pingMs);
    progress(`${survivors.length} survivor sessions live; killing ${DEAD_REGION}: the herd starts`);

    // The herd.
    const herdStats: JoinStats = { latenciesMs: [], answers: {} };
    const herdTokens = await mintJoinTokens(
      BENCH_JOIN_KEYS,
      Array.from({ length: plan.herdClients }, (_, i) => ({ sub: `herd-${i}`, room: rooms[i >> 1]! })),
    );
    const herdStart = performance.now();
    const doneAt: number[] = [];
    let failed = 0;
    const failures: Record<string, number> = {};
    const ticker = setInterval(
      () =>
        progress(
          `${Math.round((performance.now() - herdStart) / 1000)} s: ${doneAt.length}/${plan.herdClients} rejoined, ${failed} failed, answers ${JSON.stringify(herdStats.answers)}`,
        ),
      1_000,
    );
    const deadline = setTimeout(() => lifetime.abort(new Error('herd deadline')), plan.deadlineMs);
    await Promise.all(
      herdTokens.map(async (token, i) => {
        await sleep(Math.random() * DETECTION_SPREAD_MS);
        try {
          const ch = await connectClient({
            lbUrl: lbs[i % 2]!.baseUrl,
            index: plan.survivorClientsPerRegion * 2 + i,
            platforms,
            room: rooms[i >> 1]!,
            token,
            exclude: deadServers[(i >> 1) % 2],
            stats: herdStats,
            signal: lifetime.signal,
          });
          channels.push(ch);
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
    await sleep(2 * TIMEOUTS.pingMs);
    clearInterval(pinger);
    affected = affectedSet.size;

    const metrics = await Promise.all(lbs.map((lb) => fetch(`${lb.baseUrl}/metrics`).then((r) => r.text())));
    const shedAtLbs = metrics.map((text) => {
      const m = /lb_joins_total\{[^}]*outcome="shed"[^}]*\} (\d+)/.exec(text);
      return m ? Number(m[1]) : 0;
    });
    const perServer = await admin.rooms.list(SURVIVORS[0]).then(async (eu) => {
      const ap = await admin.rooms.list(SURVIVORS[1]);
      const counts: Record<string, number> = {};
      for (const room of [...eu, ...ap])
        if (room.id.startsWith('herd-')) counts[room.serverId] = (counts[room.serverId] ?? 0) + 1;
      return counts;
    });
    const allBackMs = doneAt.length === plan.herdClients ? Math.max(...doneAt) : NaN;
    const results = {
      plan,
      herd: {
        rejoined: doneAt.length,
        failed,
        failures,
        allRejoinedS: round(allBackMs / 1000, 2),
        rejoinedP50S: round(percentileOf(doneAt, 50) / 1000, 2),
        rejoinedP99S: round(percentileOf(doneAt, 99) / 1000, 2),
        joinAttemptMs: {
          p50: round(percentileOf(herdStats.latenciesMs, 50), 1),
          p99: round(percentileOf(herdStats.latenciesMs, 99), 1),
          max: round(Math.max(...herdStats.latenciesMs), 1),
        },
        answers: herdStats.answers,
        shedByLb: Object.fromEntries(SURVIVORS.map((r, i) => [r, shedAtLbs[i]])),
        roomsPerServer: perServer,
      },
      survivors: {
        sessions: survivors.length,
        affected,
        pingRttMs: { p50: round(percentileOf(pingRtts, 50), 1), p99: round(percentileOf(pingRtts, 99), 1) },
      },
    };
    const result: BenchResult = {
      ...benchHeader('herd', quick, startedAt),
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
  } finally {
    lifetime.abort(new Error('bench over'));
    for (const ch of channels) ch.close();
    for (const f of fleets) f.stop();
    await Promise.all(lbs.map((lb) => lb.stop()));
    await Promise.all(standIns.map((s) => s.close()));
    for (const p of platforms) p.close();
    await dynamo.close();
  }
}
