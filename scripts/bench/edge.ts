/**
 * `npm run bench -- edge [--quick]`: what a signaling relay weighs on the LB.
 *
 * One real LB process relays N WebSockets (2,000; quick 300) to an echo server in its own process,
 * registered in the table as the region's media server. Clients live in this process and connect from
 * 20 loopback source addresses (127.0.9.100-119) because the LB limits upgrades per address per minute.
 *   - idle: N relays open, only the relay's keepalive pings flowing; the LB's RSS is sampled every second;
 *   - active: every client sends a 200-byte frame every second and times its echo (client → LB → echo →
 *     LB → client), while RSS and CPU are sampled again; long enough (60 s relayed) to see the heap
 *     grow and a major GC bring it back, since the peak, not the first seconds, is what a task limit meets;
 *   - direct: N more clients at the same rate straight to the echo server, the floor of the round trip;
 *     relayed and direct rounds alternate so both see the same machine.
 * RSS is VmRSS from /proc/<lb pid>/status; per connection = (RSS with N relays − RSS before) / N. The LB
 * runs with the image's node flags, heap sizes included (support/lbProcess.ts), so its RSS is the task's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import WebSocket from 'ws';
import { signalingSubprotocols } from '../../runtime/protocol/subprotocol';
import { signMediaToken } from '../../runtime/protocol/tokens';
import { startCountedDynamo, type CountedDynamo } from './support/countedDynamo';
import { FakeFleet } from './support/fakeFleet';
import { BENCH_MEDIA_KEYS, startLbProcess, type LbProcess } from './support/lbProcess';
import {
  cpuMsOf,
  ipcAsk,
  ipcReady,
  machineLoad,
  rssBytesOf,
  sleep,
  spawnTs,
  stopAll,
  type BenchChild,
} from './support/processes';
import { benchHeader, emit, percentileOf, progress, round, type BenchResult } from './report';

interface EdgePlan {
  readonly connections: number;
  readonly idleMs: number;
  /** Total active time per path, split into alternating relayed/direct rounds. */
  readonly activeMs: number;
  readonly activeRounds: number;
}

const FULL: EdgePlan = { connections: 2_000, idleMs: 15_000, activeMs: 60_000, activeRounds: 3 };
const QUICK: EdgePlan = { connections: 300, idleMs: 6_000, activeMs: 6_000, activeRounds: 2 };

const SOURCE_ADDRESSES = Array.from({ length: 20 }, (_, i) => `127.0.9.${100 + i}`);
/** Connections opened at once: a burst of upgrades, not a thundering herd of 2,000. */
const OPEN_BATCH = 50;
const ACTIVE_PERIOD_MS = 1_000;
const FRAME_PAD = 'x'.repeat(150);
const SERVER_ID = 'edge-echo';
const ROOMS = 100;
const RSS_TARGET_BYTES = 200 * 2 ** 20;
const CONNECT_TIMEOUT_MS = 15_000;
const MiB = 2 ** 20;

interface Client {
  readonly socket: WebSocket;
  /** Send times of frames awaiting their echo, oldest first (a WebSocket keeps order). */
  readonly inflight: number[];
}

/** A target: the URL, and the media token when it is presented as a subprotocol (the LB's edge). */
interface Target {
  readonly url: string;
  readonly token?: string;
}

function connect(target: Target, localAddress: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const protocols = target.token === undefined ? [] : signalingSubprotocols(target.token);
    const socket = new WebSocket(target.url, protocols, {
      localAddress,
      perMessageDeflate: false,
      handshakeTimeout: CONNECT_TIMEOUT_MS,
    });
    const client: Client = { socket, inflight: [] };
    socket.once('open', () => resolve(client));
    socket.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused with HTTP ${res.statusCode}`)),
    );
    socket.once('error', reject);
  });
}

/** Sends one frame and resolves with its round trip (ms). */
function roundTrip(client: Client): Promise<number> {
  return new Promise((resolve, reject) => {
    const sentAt = performance.now();
    client.socket.once('message', () => resolve(performance.now() - sentAt));
    client.socket.once('close', (code) => reject(new Error(`socket closed with ${code}`)));
    client.socket.send(JSON.stringify({ probe: true }));
  });
}

async function openAll(targets: readonly Target[]): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < targets.length; i += OPEN_BATCH) {
    const batch = targets
      .slice(i, i + OPEN_BATCH)
      .map((target, j) => connect(target, SOURCE_ADDRESSES[(i + j) % SOURCE_ADDRESSES.length]!));
    clients.push(...(await Promise.all(batch)));
    if ((i / OPEN_BATCH) % 10 === 0) progress(`  ${clients.length}/${targets.length} open`);
  }
  // A relay is whole once the echo answers through it (the upstream leg opens after the client's).
  await Promise.all(clients.map(roundTrip));
  return clients;
}

/**
 * Every client sends a frame every ACTIVE_PERIOD_MS, phases spread evenly over the period, and records
 * the round trip of each echo.
 */
async function activePhase(
  clients: readonly Client[],
  durationMs: number,
): Promise<{ rttMs: number[]; lost: number }> {
  const rttMs: number[] = [];
  const timers: NodeJS.Timeout[] = [];
  for (const c of clients) {
    c.socket.removeAllListeners('message');
    c.socket.on('message', () => {
      const sentAt = c.inflight.shift();
      if (sentAt !== undefined) rttMs.push(performance.now() - sentAt);
    });
  }
  clients.forEach((c, i) => {
    const start = setTimeout(
      () => {
        const send = () => {
          if (c.socket.readyState !== WebSocket.OPEN) return;
          c.inflight.push(performance.now());
          c.socket.send(
            JSON.stringify({ id: c.inflight.length, method: 'getStats', data: { pad: FRAME_PAD } }),
          );
        };
        send();
        timers.push(setInterval(send, ACTIVE_PERIOD_MS));
      },
      (i / clients.length) * ACTIVE_PERIOD_MS,
    );
    timers.push(start);
  });
  await sleep(durationMs);
  for (const t of timers) clearInterval(t);
  // Let the last frames come back before counting what is missing.
  await sleep(1_000);
  const lost = clients.reduce((sum, c) => sum + c.inflight.splice(0).length, 0);
  return { rttMs, lost };
}

interface Sampled<T> {
  readonly result: T;
  readonly rssBytes: number[];
  readonly cpuMs: number;
  readonly wallMs: number;
}

/** Samples the LB's RSS every second while `work` runs; returns the samples and the CPU used. */
async function sampled<T>(pid: number, work: () => Promise<T>): Promise<Sampled<T>> {
  const rssBytes: number[] = [rssBytesOf(pid)];
  const timer = setInterval(() => rssBytes.push(rssBytesOf(pid)), 1_000);
  const cpuBefore = cpuMsOf(pid);
  const t0 = performance.now();
  try {
    const result = await work();
    rssBytes.push(rssBytesOf(pid));
    return { result, rssBytes, cpuMs: cpuMsOf(pid) - cpuBefore, wallMs: performance.now() - t0 };
  } finally {
    clearInterval(timer);
  }
}

function openFiles(pid: number | 'self'): { open: number; limit: number } {
  const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  return {
    open: fs.readdirSync(`/proc/${pid}/fd`).length,
    limit: match?.[1] === 'unlimited' ? Infinity : Number(match?.[1] ?? NaN),
  };
}

async function closeAll(clients: readonly Client[]): Promise<void> {
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.socket.readyState === WebSocket.CLOSED) return resolve();
          c.socket.once('close', () => resolve());
          c.socket.close(1000);
          setTimeout(() => {
            c.socket.terminate();
            resolve();
          }, 5_000).unref();
        }),
    ),
  );
}

function latencySummary(rttMs: readonly number[]) {
  return {
    samples: rttMs.length,
    p50Ms: round(percentileOf(rttMs, 50), 2),
    p99Ms: round(percentileOf(rttMs, 99), 2),
    maxMs: round(Math.max(...rttMs), 2),
  };
}

type Latency = ReturnType<typeof latencySummary>;

/** The processes and sockets of the bench, filled in as they open so `finally` closes what exists. */
interface EdgeRig {
  dynamo?: CountedDynamo;
  echo?: BenchChild;
  fleet?: FakeFleet;
  lb?: LbProcess;
  clients: Client[];
  directClients: Client[];
}

/** The alternating relayed/direct rounds, added up per path. */
interface ActiveRounds {
  readonly relayed: {
    readonly rttMs: number[];
    readonly lost: number;
    readonly rssBytes: number[];
    readonly cpuMs: number;
    readonly wallMs: number;
  };
  readonly direct: { readonly rttMs: number[]; readonly lost: number };
  readonly rounds: Array<{ path: string; loadAvg1m: number } & Latency>;
}

/** Everything the edge bench measured, before figures are derived from it. */
interface EdgeMeasurements {
  readonly connections: number;
  readonly lbNodeFlags: readonly string[];
  readonly openFiles: { benchLimit: number; lbLimit: number; lbOpenWithRelays: number };
  readonly rssBefore: number;
  readonly opened: Sampled<unknown>;
  readonly idle: Sampled<unknown>;
  readonly active: ActiveRounds;
  readonly relaysStillOpen: number;
}

export async function run({ quick }: { quick: boolean }): Promise<void> {
  const plan = quick ? QUICK : FULL;
  const startedAt = new Date();
  const loadBefore = machineLoad();
  const n = plan.connections;
  const needed = 2 * n + 100;
  const self = openFiles('self');
  progress(
    `edge bench (${quick ? 'quick' : 'full'}): ${n} relays; open-file limit ${self.limit} (this process needs ~${2 * n}, the LB ~${needed})`,
  );
  if (self.limit < 2 * n + 100)
    throw new Error(
      `ulimit -n is ${self.limit}; raise it to at least ${needed} (e.g. \`ulimit -n 20000\`) and rerun`,
    );

  const rig: EdgeRig = { clients: [], directClients: [] };
  try {
    const measured = await measureEdge(rig, plan, { benchLimit: self.limit, lbNeeds: needed });
    const f = edgeFigures(measured);
    const result: BenchResult = {
      ...benchHeader('edge', quick, startedAt),
      results: {
        method:
          'real LB process relaying to an echo WebSocket server in its own process; clients in the bench process over 20 loopback source addresses; ' +
          `active = one 200-byte text frame per client per ${ACTIVE_PERIOD_MS} ms, echoed; RSS = VmRSS of the LB`,
        machineLoad: { before: loadBefore, after: machineLoad() },
        lbNodeFlags: measured.lbNodeFlags,
        connections: n,
        openFiles: measured.openFiles,
        rssMiB: {
          before: round(measured.rssBefore / MiB, 1),
          whileOpening: round(Math.max(...measured.opened.rssBytes) / MiB, 1),
          idle: round(f.rssIdle / MiB, 1),
          activeMedian: round(f.rssActiveMedian / MiB, 1),
          activeMax: round(f.rssActiveMax / MiB, 1),
          idleSamples: measured.idle.rssBytes.map((b) => round(b / MiB, 1)),
          activeSamples: measured.active.relayed.rssBytes.map((b) => round(b / MiB, 1)),
        },
        rssPerConnectionKiB: {
          idle: round(f.perConnIdle / 1024, 1),
          active: round(f.perConnActive / 1024, 1),
        },
        lbCpu: {
          openMsPerRelay: round(measured.opened.cpuMs / n, 3),
          idleCorePercent: round((measured.idle.cpuMs / measured.idle.wallMs) * 100, 1),
          activeCorePercent: f.activeCorePercent,
          activeMsPerRoundTrip: f.activeMsPerRoundTrip,
        },
        relayed: {
          ...f.relayed,
          framesPerSecond: round(n / (ACTIVE_PERIOD_MS / 1000)),
          lost: measured.active.relayed.lost,
          relaysStillOpen: measured.relaysStillOpen,
        },
        direct: { ...f.direct, lost: measured.active.direct.lost },
        rounds: measured.active.rounds,
      },
      targets: edgeTargets(measured, f, quick),
    };
    emit(result, summaryRows(measured, f));
  } finally {
    for (const c of [...rig.clients, ...rig.directClients]) c.socket.terminate();
    rig.fleet?.stop();
    await stopAll([rig.dynamo?.process, rig.echo, rig.lb?.process]);
    await rig.dynamo?.close();
  }
}

/**
 * The phases, in order: setup, warm-up and RSS baseline, N relays opened, idle, N direct connections
 * opened, active rounds; every socket is closed again before it returns.
 */
async function measureEdge(
  rig: EdgeRig,
  plan: EdgePlan,
  limits: { readonly benchLimit: number; readonly lbNeeds: number },
): Promise<EdgeMeasurements> {
  const n = plan.connections;
  const { lb, echo, echoEndpoint } = await startRig(rig);
  const lbFiles = openFiles(lb.pid);
  if (lbFiles.limit < limits.lbNeeds)
    throw new Error(`the LB's open-file limit is ${lbFiles.limit}; it needs ${limits.lbNeeds}`);
  const tokens = await mediaTokens(n);
  // Clients present the token as a subprotocol; the LB hands it to the media server in the URL.
  const wsBase = lb.baseUrl.replace(/^http/, 'ws');
  const lbTargets = tokens.map((t, i) => ({ url: `${wsBase}${signalPath(i)}`, token: t }));

  const rssBefore = await warmUp(lb, lbTargets);
  progress(`opening ${n} relays`);
  const opened = await sampled(lb.pid, () => openAll(lbTargets));
  rig.clients = opened.result;
  const echoStats = await ipcAsk<{ connections: number }>(echo, 'stats');
  const lbFilesOpen = openFiles(lb.pid).open;
  progress(
    `${rig.clients.length} relays open (${echoStats.connections} at the echo server, ${lbFilesOpen} fds in the LB)`,
  );

  progress(`idle for ${plan.idleMs} ms`);
  const idle = await sampled(lb.pid, () => sleep(plan.idleMs));
  const rssIdle = idle.rssBytes[idle.rssBytes.length - 1]!;
  progress(`idle RSS ${round(rssIdle / MiB, 1)} MiB; active for ${plan.activeMs} ms`);
  progress(`opening ${n} direct connections to the echo server (the floor of a round trip)`);
  rig.directClients = await openAll(
    tokens.map((t, i) => ({ url: `${echoEndpoint}${signalPath(i)}?token=${t}` })),
  );

  const active = await activeRounds(lb.pid, rig.clients, rig.directClients, plan);
  const relayed = latencySummary(active.relayed.rttMs);
  const direct = latencySummary(active.direct.rttMs);
  progress(
    `active: relayed RTT p50 ${relayed.p50Ms} p99 ${relayed.p99Ms} ms, direct p50 ${direct.p50Ms} p99 ${direct.p99Ms} ms, LB RSS max ${round(Math.max(...active.relayed.rssBytes) / MiB, 1)} MiB`,
  );
  const relaysStillOpen = rig.clients.filter((c) => c.socket.readyState === WebSocket.OPEN).length;
  await closeAll([...rig.clients, ...rig.directClients]);
  rig.clients = [];
  rig.directClients = [];
  return {
    connections: n,
    lbNodeFlags: lb.nodeFlags,
    openFiles: { benchLimit: limits.benchLimit, lbLimit: lbFiles.limit, lbOpenWithRelays: lbFilesOpen },
    rssBefore,
    opened,
    idle,
    active,
    relaysStillOpen,
  };
}

/** The figures the report and the table share. */
function edgeFigures(m: EdgeMeasurements) {
  const n = m.connections;
  const rssIdle = m.idle.rssBytes[m.idle.rssBytes.length - 1]!;
  const rssActiveMax = Math.max(...m.active.relayed.rssBytes);
  const activeMsgs = m.active.relayed.rttMs.length + m.active.relayed.lost;
  return {
    rssIdle,
    rssActiveMax,
    // Garbage from relayed frames builds up between major GCs: the median is the level RSS hovers at.
    rssActiveMedian: percentileOf(m.active.relayed.rssBytes, 50),
    peakRss: Math.max(rssIdle, rssActiveMax, ...m.opened.rssBytes),
    perConnIdle: (rssIdle - m.rssBefore) / n,
    perConnActive: (rssActiveMax - m.rssBefore) / n,
    relayed: latencySummary(m.active.relayed.rttMs),
    direct: latencySummary(m.active.direct.rttMs),
    activeCorePercent: round((m.active.relayed.cpuMs / m.active.relayed.wallMs) * 100, 1),
    // A round trip is two relayed frames (client → echo and back).
    activeMsPerRoundTrip: round(m.active.relayed.cpuMs / Math.max(1, activeMsgs), 3),
  };
}

type EdgeFigures = ReturnType<typeof edgeFigures>;

function edgeTargets(m: EdgeMeasurements, f: EdgeFigures, quick: boolean): BenchResult['targets'] {
  const n = m.connections;
  const extrapolated = m.rssBefore + f.perConnActive * 2_000;
  return [
    {
      name: `LB RSS with ${n} relays (idle / active median / active peak)`,
      target: quick ? '< 200 MiB at 2,000 (quick: extrapolated)' : '< 200 MiB',
      measured: quick
        ? `${round(f.peakRss / MiB, 1)} MiB at ${n}; ${round(extrapolated / MiB, 1)} MiB extrapolated linearly to 2,000 (small runs overstate it)`
        : `${round(f.rssIdle / MiB, 1)} / ${round(f.rssActiveMedian / MiB, 1)} / ${round(f.rssActiveMax / MiB, 1)} MiB`,
      met: quick ? extrapolated < RSS_TARGET_BYTES : f.peakRss < RSS_TARGET_BYTES,
    },
    {
      name: 'frames lost / relays dropped',
      target: '0 / 0',
      measured: `${m.active.relayed.lost} / ${n - m.relaysStillOpen}`,
      met: m.active.relayed.lost === 0 && m.relaysStillOpen === n,
    },
  ];
}

function summaryRows(m: EdgeMeasurements, f: EdgeFigures): (string | number)[][] {
  return [
    [
      'relays',
      'RSS before',
      'RSS idle',
      'RSS active med',
      'RSS active max',
      'KiB/relay',
      'RTT p50',
      'RTT p99',
      'direct p50',
      'direct p99',
      'LB CPU active',
    ],
    [
      m.connections,
      `${round(m.rssBefore / MiB, 1)} MiB`,
      `${round(f.rssIdle / MiB, 1)} MiB`,
      `${round(f.rssActiveMedian / MiB, 1)} MiB`,
      `${round(f.rssActiveMax / MiB, 1)} MiB`,
      round(f.perConnActive / 1024, 1),
      `${f.relayed.p50Ms} ms`,
      `${f.relayed.p99Ms} ms`,
      `${f.direct.p50Ms} ms`,
      `${f.direct.p99Ms} ms`,
      `${f.activeCorePercent}%`,
    ],
  ];
}

/** Setup: dynalite, the echo server registered as the region's only media server, the LB. */
async function startRig(rig: EdgeRig): Promise<{ lb: LbProcess; echo: BenchChild; echoEndpoint: string }> {
  const dynamo = (rig.dynamo = await startCountedDynamo());
  const echo = (rig.echo = spawnTs('echo server', path.join(__dirname, 'support', 'echoProcess.ts'), {
    ipc: true,
  }));
  const { endpoint } = await ipcReady<{ endpoint: string }>(echo);
  const fleet = (rig.fleet = new FakeFleet(dynamo.adminStore(), dynamo.region, [
    { id: SERVER_ID, endpoint, capacity: 1_000_000 },
  ]));
  await fleet.start();
  const lb = (rig.lb = await startLbProcess(dynamo));
  progress(`LB node flags: ${lb.nodeFlags.join(' ')}`);
  return { lb, echo, echoEndpoint: endpoint };
}

/** One media token per client, spread over ROOMS rooms, all for the echo server. */
async function mediaTokens(n: number): Promise<string[]> {
  const signed = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      signMediaToken(BENCH_MEDIA_KEYS, {
        peerId: `edge-peer-${i}`,
        identity: `edge-user-${i}`,
        room: `edge-room-${i % ROOMS}`,
        server: SERVER_ID,
        ttlSeconds: 600,
      }),
    ),
  );
  return signed.map((t) => t.token);
}

function signalPath(i: number): string {
  return `/v1/rooms/edge-room-${i % ROOMS}/signal`;
}

/** Warms the relay code paths, then lets the heap settle; returns the LB's RSS baseline. */
async function warmUp(lb: LbProcess, lbTargets: readonly Target[]): Promise<number> {
  progress('warming up');
  const warm = await openAll(lbTargets.slice(0, Math.min(50, lbTargets.length)));
  await closeAll(warm);
  await sleep(2_000);
  const rssBefore = rssBytesOf(lb.pid);
  progress(`LB RSS before: ${round(rssBefore / MiB, 1)} MiB`);
  return rssBefore;
}

/**
 * Relayed and direct rounds alternate so both see the same machine (other work comes and goes); the
 * LB's RSS and CPU are sampled during the relayed ones.
 */
async function activeRounds(
  lbPid: number,
  clients: readonly Client[],
  directClients: readonly Client[],
  plan: EdgePlan,
): Promise<ActiveRounds> {
  const relayedRtt: number[] = [];
  const directRtt: number[] = [];
  const activeRss: number[] = [];
  const rounds: ActiveRounds['rounds'] = [];
  let relayedLost = 0;
  let directLost = 0;
  let activeCpuMs = 0;
  let activeWallMs = 0;
  const roundMs = plan.activeMs / plan.activeRounds;
  for (let r = 0; r < plan.activeRounds; r++) {
    progress(`round ${r + 1}/${plan.activeRounds}: relayed then direct, ${roundMs} ms each`);
    const relayedRound = await sampled(lbPid, () => activePhase(clients, roundMs));
    relayedRtt.push(...relayedRound.result.rttMs);
    relayedLost += relayedRound.result.lost;
    activeRss.push(...relayedRound.rssBytes);
    activeCpuMs += relayedRound.cpuMs;
    activeWallMs += relayedRound.wallMs;
    rounds.push({
      path: 'relayed',
      ...latencySummary(relayedRound.result.rttMs),
      loadAvg1m: machineLoad().loadAvg1m,
    });
    const directRound = await activePhase(directClients, roundMs);
    directRtt.push(...directRound.rttMs);
    directLost += directRound.lost;
    rounds.push({
      path: 'direct',
      ...latencySummary(directRound.rttMs),
      loadAvg1m: machineLoad().loadAvg1m,
    });
  }
  return {
    relayed: {
      rttMs: relayedRtt,
      lost: relayedLost,
      rssBytes: activeRss,
      cpuMs: activeCpuMs,
      wallMs: activeWallMs,
    },
    direct: { rttMs: directRtt, lost: directLost },
    rounds,
  };
}
