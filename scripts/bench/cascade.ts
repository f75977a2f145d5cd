/**
 * `npm run bench -- cascade [--quick]`: what cascading one room across regions costs, and what it buys.
 *
 * 1. Pipe cost (in a child process: support/pipeCostProcess.ts). Two mediasoup workers on two addresses play two regions' media servers. Leg A carries
 *    one peer's real media (libwebrtc VP8 640x360@30 capped at 800 kbps plus an Opus tone, over a real
 *    WebRtcTransport: support/mediaRig.ts). Step by step, one more remote leg is added: a router on
 *    worker B and a PipeLink pair (SRTP and RTX on, keepalive streams running: runtime/media/PipeLink.ts)
 *    through which both of the peer's producers are piped, exactly as two media servers' Cascades set
 *    it up. At each step both workers' CPU (/proc/<pid>/stat) and the pipes' wire bytes are read over a
 *    window; least-squares lines over the steps give the cost of one piped peer (its video and audio
 *    crossing to one more region) on the sending and on the receiving leg. A consumer of the piped
 *    media on the far leg costs what any consumer costs (`bench media`), so none is added here.
 * 2. One pipe hop's added latency. On leg A a plain-RTP viewer consumes the peer directly; on one
 *    remote leg another consumes the piped producers. Both viewers' packets arrive at sockets in this
 *    process, stamped on one clock. The same packet is recognised on both by its RTP timestamp (mediasoup
 *    forwards timestamps unchanged through simple and pipe consumers): audio packets one by one, video
 *    frames by their last packet (marker bit). The difference is what one hop adds: the pipe consumer,
 *    SRTP both ways, the pipe producer, on loopback. Between real regions the network path comes on top.
 * 3. Survivors' gap over repeated region kills. A three-region local stack (its own addresses and
 *    ports) and the chaos scenario's media fleet: one room, a witness near each surviving region and
 *    the rest near the region that dies. Each run kills one region (rotating) and reads
 *    `media.survivors`: the longest stretch in which a survivor decoded no frame from another. The
 *    verdict's bound is 500 ms; the distribution over runs is the figure.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalTarget } from '../chaos/local-target';
import { runLocalChaos, type ChaosReport } from '../chaos/local-run';
import { SURVIVOR_GAP_LIMIT_MS } from '../chaos/survivors';
import type { PipePlan, PipeResult } from './support/pipeCostProcess';
import { benchStackConfig } from './support/stackConfig';
import { ipcReady, spawnTs, stopAll, untilReady } from './support/processes';
import { benchHeader, emit, percentileOf, progress, round, type BenchResult } from './report';

interface CascadePlan extends PipePlan {
  /** Region kills for the survivors' gap. */
  readonly kills: number;
}

const FULL: CascadePlan = {
  maxLegs: 12,
  settleMs: 2_000,
  windowMs: 4_000,
  latencyWindowMs: 15_000,
  kills: 6,
};
const QUICK: CascadePlan = { maxLegs: 4, settleMs: 1_000, windowMs: 2_000, latencyWindowMs: 5_000, kills: 3 };

interface SurvivorRun {
  readonly killed: string;
  readonly verdictPass: boolean;
  /** The verdict's failed checks, when it failed. */
  readonly failedChecks: string[];
  readonly pairs: number;
  readonly maxGapMs: number | null;
  /** Media back for the killed region's media clients, from the injection, ms. */
  readonly affectedMediaMs: number[];
}

export async function run({ quick }: { quick: boolean }): Promise<void> {
  const plan = quick ? QUICK : FULL;
  const startedAt = new Date();
  progress(`cascade bench (${quick ? 'quick' : 'full'}): pipe cost, one hop's latency, survivors' gap`);
  const { cost, latency, engine } = await pipesInChild(plan);
  const survivors = await measureSurvivors(plan);

  const gaps = survivors.flatMap((r) => (r.maxGapMs === null ? [] : [r.maxGapMs]));
  const gapStats = {
    runs: survivors.length,
    withPairs: gaps.length,
    p50Ms: round(percentileOf(gaps, 50), 0),
    p95Ms: round(percentileOf(gaps, 95), 0),
    maxMs: gaps.length ? Math.max(...gaps) : NaN,
  };
  const affected = survivors.flatMap((r) => r.affectedMediaMs);
  const targets: BenchResult['targets'] = [
    {
      name: "survivors' longest media gap, every kill",
      target: `< ${SURVIVOR_GAP_LIMIT_MS} ms`,
      measured: gaps.length ? `max ${gapStats.maxMs} ms over ${gaps.length} runs` : 'no survivor pair',
      met: gaps.length === survivors.length && gaps.every((g) => g < SURVIVOR_GAP_LIMIT_MS),
    },
  ];
  emit(
    {
      ...benchHeader('cascade', quick, startedAt),
      results: {
        engine,
        pipeCost: cost,
        hopLatency: latency,
        survivors: { ...gapStats, affectedMediaP50Ms: round(percentileOf(affected, 50), 0), runs: survivors },
      },
      targets,
    },
    [
      ['figure', 'value'],
      ['CPU per piped peer, sending leg', `${cost.senderCorePercentPerPipedPeer} % of a core`],
      ['CPU per piped peer, receiving leg', `${cost.receiverCorePercentPerPipedPeer} % of a core`],
      ['wire per piped peer', `${cost.wireKbpsPerPipedPeer} kbps (peer sends ${cost.producerKbps} kbps)`],
      [
        'one pipe hop, audio packets',
        `p50 ${latency.audioPackets.p50Ms} ms, p95 ${latency.audioPackets.p95Ms} ms (n ${latency.audioPackets.n})`,
      ],
      [
        'one pipe hop, video frames',
        `p50 ${latency.videoFrames.p50Ms} ms, p95 ${latency.videoFrames.p95Ms} ms (n ${latency.videoFrames.n})`,
      ],
      [
        "survivors' gap per kill",
        `p50 ${gapStats.p50Ms} ms, max ${gapStats.maxMs} ms (${gapStats.withPairs}/${gapStats.runs} runs)`,
      ],
      ['killed region media back (p50)', `${round(percentileOf(affected, 50), 0)} ms`],
    ],
  );
}

/** Parts 1 and 2 in a child process (support/pipeCostProcess.ts says why). */
async function pipesInChild(plan: PipePlan): Promise<PipeResult> {
  const child = spawnTs('pipe rig', path.join(__dirname, 'support', 'pipeCostProcess.ts'), { ipc: true });
  try {
    await ipcReady(child);
    const answer = new Promise<PipeResult>((resolve, reject) => {
      child.child.on(
        'message',
        (msg: { type: string; line?: string; result?: PipeResult; message?: string }) => {
          if (msg.type === 'progress') progress(msg.line!);
          else if (msg.type === 'result') resolve(msg.result!);
          else if (msg.type === 'error') reject(new Error(`pipe rig: ${msg.message}`));
        },
      );
    });
    child.child.send({ type: 'run', plan: { ...plan } });
    return await untilReady(child, answer);
  } finally {
    await stopAll([child]);
  }
}

// ---- 3: survivors' gap over repeated region kills --------------------------------------------------------

async function measureSurvivors(plan: CascadePlan): Promise<SurvivorRun[]> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-cascade-'));
  progress('survivors: starting a 3-region stack');
  const target = await LocalTarget.attachOrStart({
    // Addresses and ports apart from a developer's stack and the failover bench's.
    config: benchStackConfig({
      addressOctet: 5,
      portBase: 30_000,
      healthCheckIntervalSeconds: 2,
      dnsTtlSeconds: 2,
    }),
    stateDir,
    log: (l) => progress(`  ${l.trim()}`),
  });
  const runs: SurvivorRun[] = [];
  try {
    const regions = target.regionNames;
    for (let i = 0; i < plan.kills; i++) {
      const region = regions[i % regions.length]!;
      progress(`survivors: kill ${i + 1}/${plan.kills} of ${region}`);
      const report = await runLocalChaos(target, {
        region,
        mode: 'kill',
        // Three signaling-only clients keep rooms in more than one region (the steady state wants it);
        // of the media clients, a witness sits near each surviving region and four near the one that dies.
        clients: 9,
        mediaClients: 6,
        durationS: null,
        log: () => undefined,
        aborted: () => false,
      });
      const run = survivorRun(report);
      progress(
        `  ${run.verdictPass ? 'pass' : `FAIL (${run.failedChecks.join('; ')})`}: survivors' longest gap ${run.maxGapMs ?? '—'} ms over ${run.pairs} pair(s); media back for the killed region's peers after ${run.affectedMediaMs.join(', ') || '—'} ms`,
      );
      runs.push(run);
    }
  } finally {
    await target.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
  return runs;
}

function survivorRun(report: ChaosReport): SurvivorRun {
  const survivors = report.media?.survivors;
  return {
    killed: report.region,
    verdictPass: report.verdict.pass,
    failedChecks: report.verdict.checks.filter((c) => !c.pass).map((c) => `${c.name}: ${c.detail}`),
    pairs: survivors?.pairs ?? 0,
    maxGapMs: survivors?.maxGapMs ?? null,
    affectedMediaMs: report.clients
      .filter((c) => c.withMedia && c.serverRegionBefore === report.region && c.mediaAtMs !== null)
      .map((c) => c.mediaAtMs!),
  };
}
