/**
 * `npm run bench -- media [--quick]`: consumers one mediasoup worker carries before it fills a core.
 *
 * One worker, one router with the room codecs (VP8 first). Producers are the test peers' synthetic
 * sources (libwebrtc VP8 640x360@30 capped at 800 kbps plus an Opus tone) over real WebRtcTransports;
 * viewers are SRTP PlainTransports consuming every producer (see support/mediaRig.ts for why). Viewers
 * are added step by step; at each step the worker's CPU is read from /proc/<worker pid>/stat over a
 * window, and a sample of consumers is checked to still forward every packet its producer receives.
 * The run stops at saturation — the worker at >= 90% of a core, consumers forwarding < 95% of their
 * producer's packets, or the worker no longer answering its channel — or at the step bound.
 *
 * The producers' packet rate is not constant: libwebrtc's bandwidth estimate and frame timers react to
 * a busy machine (two shared cores), so the worker's load per consumer moves between steps. A
 * least-squares line of worker CPU over packets forwarded gives the worker's cost per packet, and so the
 * consumers that fill one core at the producers' packet rate before any viewer — the figure compared
 * with mediasoup's documented "~500 consumers per worker".
 */
import * as path from 'node:path';
import { linearFit } from './support/linearFit';
import {
  MediaRig,
  rtpCounters,
  type EncoderState,
  type RtpCounters,
  type VideoSettings,
} from './support/mediaRig';
import {
  cpuMsOf,
  ipcReady,
  machineLoad,
  sleep,
  spawnTs,
  stopAll,
  type BenchChild,
} from './support/processes';
import { benchHeader, emit, progress, round, type BenchResult } from './report';

interface MediaPlan {
  readonly producerPeers: number;
  readonly viewersPerStep: number;
  readonly maxViewers: number;
  readonly rampMs: number;
  readonly settleMs: number;
  readonly windowMs: number;
}

const FULL: MediaPlan = {
  producerPeers: 2,
  viewersPerStep: 25,
  maxViewers: 750,
  rampMs: 6_000,
  settleMs: 2_000,
  windowMs: 4_000,
};
const QUICK: MediaPlan = {
  producerPeers: 1,
  viewersPerStep: 25,
  maxViewers: 100,
  rampMs: 4_000,
  settleMs: 1_000,
  windowMs: 2_000,
};

const VIDEO: VideoSettings = { width: 640, height: 360, fps: 30, maxBitrateBps: 800_000 };
/** mediasoup 3.8 binds one port per transport: room for every viewer plus the producers. */
const RTC_PORTS = { rtcMinPort: 40_000, rtcMaxPort: 49_999 };
const SATURATED_CORE_PERCENT = 90;
const MIN_DELIVERED_RATIO = 0.95;
/** Consumers whose packet counts are read per step: getStats is a worker request, kept out of the CPU window and few. */
const SAMPLED_CONSUMERS = 16;
/** mediasoup.org/documentation/v3/scalability: "can typically handle over ~500 consumers in total". */
const DOCUMENTED_CONSUMERS_PER_WORKER = 500;

interface Step {
  readonly viewers: number;
  readonly consumers: number;
  readonly workerCorePercent: number;
  readonly benchCorePercent: number;
  /** Packets sent per sampled consumer / packets its producer received, over the same interval. */
  readonly deliveredRatio: number;
  readonly forwardedPacketsPerSecond: number;
  readonly forwardedMbps: number;
  /** RTP the producers delivered to the worker against their rate before any viewer (see the header). */
  readonly producerInputRatio: number;
  readonly encoders: EncoderState[];
  readonly loadAvg1m: number;
}

async function producerRates(
  rig: MediaRig,
  seconds: number,
): Promise<Array<{ kind: string; packetsPerSecond: number; kbps: number }>> {
  const before = await Promise.all(rig.producers.map((p) => rtpCounters(p, 'inbound-rtp')));
  await sleep(seconds * 1000);
  const after = await Promise.all(rig.producers.map((p) => rtpCounters(p, 'inbound-rtp')));
  return rig.producers.map((p, i) => ({
    kind: p.kind,
    packetsPerSecond: round((after[i]!.packets - before[i]!.packets) / seconds, 1),
    kbps: round(((after[i]!.bytes - before[i]!.bytes) * 8) / seconds / 1000, 1),
  }));
}

async function measureStep(rig: MediaRig, plan: MediaPlan, baselineInputPps: number): Promise<Step> {
  const stride = Math.max(1, Math.floor(rig.consumers.length / SAMPLED_CONSUMERS));
  const sample = rig.consumers.filter((_, i) => i % stride === 0).slice(0, SAMPLED_CONSUMERS);
  const producerIndex = new Map(rig.producers.map((p, i) => [p.id, i]));
  const snapshot = async () => {
    const [consumers, producers] = await Promise.all([
      Promise.all(sample.map((c) => rtpCounters(c, 'outbound-rtp'))),
      Promise.all(rig.producers.map((p) => rtpCounters(p, 'inbound-rtp'))),
    ]);
    return { consumers, producers, at: performance.now() };
  };
  const before = await snapshot();
  const workerCpu0 = cpuMsOf(rig.workerPid);
  const benchCpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(plan.windowMs);
  const wallMs = performance.now() - t0;
  const workerCpuMs = cpuMsOf(rig.workerPid) - workerCpu0;
  const benchCpu = process.cpuUsage(benchCpu0);
  const after = await snapshot();

  const ratios = sample.map((c, i) => {
    const p = producerIndex.get(c.producerId)!;
    const produced = after.producers[p]!.packets - before.producers[p]!.packets;
    const sent = after.consumers[i]!.packets - before.consumers[i]!.packets;
    return produced > 0 ? sent / produced : 1;
  });
  const seconds = (after.at - before.at) / 1000;
  const delta = (a: RtpCounters, b: RtpCounters) => ({
    packets: a.packets - b.packets,
    bytes: a.bytes - b.bytes,
  });
  // Every consumer of a producer forwards what the sampled ones do: scale the producers' rates.
  const deliveredRatio = ratios.length > 0 ? Math.min(...ratios) : 1;
  const viewers = rig.viewerCount;
  const producedPerViewer = rig.producers.map((_, i) => delta(after.producers[i]!, before.producers[i]!));
  const forwardedPackets = producedPerViewer.reduce((s, d) => s + d.packets, 0) * viewers * deliveredRatio;
  const forwardedBytes = producedPerViewer.reduce((s, d) => s + d.bytes, 0) * viewers * deliveredRatio;
  return {
    viewers,
    consumers: rig.consumers.length,
    workerCorePercent: round((workerCpuMs / wallMs) * 100, 1),
    benchCorePercent: round(((benchCpu.user + benchCpu.system) / 1000 / wallMs) * 100, 1),
    deliveredRatio: round(deliveredRatio, 3),
    forwardedPacketsPerSecond: Math.round(forwardedPackets / seconds),
    forwardedMbps: round((forwardedBytes * 8) / seconds / 1e6, 1),
    producerInputRatio: round(
      producedPerViewer.reduce((s, d) => s + d.packets, 0) / seconds / baselineInputPps,
      3,
    ),
    encoders: await rig.encoderStates(),
    loadAvg1m: machineLoad().loadAvg1m,
  };
}

function describeEncoders(encoders: readonly EncoderState[]): string {
  return encoders
    .map(
      (e) =>
        `[${e.frameWidth ?? '?'}px ${e.framesPerSecond ?? '?'}fps bwe ${e.availableOutgoingBitrate !== null ? round(e.availableOutgoingBitrate / 1e6, 2) : '?'}M ${e.qualityLimitationReason ?? ''}]`,
    )
    .join('');
}

type ProducerRate = Awaited<ReturnType<typeof producerRates>>[number];

/** The viewer ramp: every step measured, and where (and why) it stopped. */
interface Ramp {
  readonly steps: Step[];
  /** The step that saturated the worker, or the last good one when the worker stalled. */
  readonly saturation: Step | undefined;
  readonly workerStalled: string | null;
}

/** Lines of worker CPU over consumers and over packets forwarded, and where they reach a full core. */
interface CostFit {
  readonly fit: ReturnType<typeof linearFit>;
  readonly packetFit: ReturnType<typeof linearFit>;
  readonly packetsPerConsumer: number;
  readonly atFullCore: number;
  readonly atFullCoreByConsumers: number;
}

export async function run({ quick }: { quick: boolean }): Promise<void> {
  const plan = quick ? QUICK : FULL;
  const startedAt = new Date();
  const loadBefore = machineLoad();
  let sink: BenchChild | undefined;
  let rig: MediaRig | undefined;
  try {
    sink = spawnTs('UDP sink', path.join(__dirname, 'support', 'udpSinkProcess.ts'), { ipc: true });
    const { port: sinkPort } = await ipcReady<{ port: number }>(sink);
    rig = await MediaRig.create({ ...RTC_PORTS, sinkPort });
    progress(
      `media bench (${quick ? 'quick' : 'full'}): ${rig.engine.flavour} mediasoup ${rig.engine.version}, worker pid ${rig.workerPid}`,
    );
    const producers = await startProducers(rig, plan);
    const baselineInputPps = producers.reduce((sum, p) => sum + p.packetsPerSecond, 0);
    const ramp = await addViewersUntilSaturated(rig, plan, baselineInputPps);
    const cost = fitCost(ramp, baselineInputPps / rig.producers.length);
    const consumersPerViewer = rig.producers.length;
    const { fit, packetFit, packetsPerConsumer, atFullCore } = cost;
    const result: BenchResult = {
      ...benchHeader('media', quick, startedAt),
      results: {
        method:
          'one mediasoup worker; producers = test-peer synthetic sources (libwebrtc VP8 + Opus) over WebRtcTransports; ' +
          `viewers = SRTP PlainTransports consuming all ${consumersPerViewer} producers, sending to a UDP sink that never reads; ` +
          'worker CPU from /proc/<pid>/stat; saturation = >= 90% of a core, < 95% of packets forwarded, or a stalled worker channel; ' +
          'consumers at a full core = line of worker CPU over packets forwarded, at the mean packet rate per consumer before any viewer',
        engine: { flavour: rig.engine.flavour, version: rig.engine.version },
        machineLoad: { before: loadBefore, after: machineLoad() },
        video: VIDEO,
        producers,
        steps: ramp.steps,
        saturation: ramp.saturation ?? null,
        workerStalled: ramp.workerStalled,
        packetsPerSecondPerConsumer: round(packetsPerConsumer, 1),
        workerMicrosecondsPerForwardedPacket: round(packetFit.slope * 10_000, 2),
        packetFit: {
          corePercentPerPacketPerSecond: packetFit.slope,
          idleCorePercent: round(packetFit.intercept, 2),
          r2: round(packetFit.r2, 3),
        },
        consumersAtFullCoreByConsumerLine: cost.atFullCoreByConsumers,
        fit: {
          corePercentPerConsumer: round(fit.slope, 4),
          idleCorePercent: round(fit.intercept, 2),
          r2: round(fit.r2, 3),
        },
        consumersAtFullCore: atFullCore,
        documentedConsumersPerWorker: DOCUMENTED_CONSUMERS_PER_WORKER,
      },
      targets: [consumersTarget(ramp, cost)],
    };
    emit(result, summaryRows(ramp.steps));
  } finally {
    rig?.close();
    await stopAll([sink]);
  }
}

/** Adds the producer peers and lets their encoders ramp up; returns each producer's steady rate. */
async function startProducers(rig: MediaRig, plan: MediaPlan): Promise<ProducerRate[]> {
  for (let i = 0; i < plan.producerPeers; i++) await rig.addProducerPeer(VIDEO, true);
  progress(`${rig.producers.length} producers; letting the encoders ramp up for ${plan.rampMs} ms`);
  await sleep(plan.rampMs);
  const producers = await producerRates(rig, 2);
  progress(
    `producers: ${producers.map((p) => `${p.kind} ${p.kbps} kbps ${p.packetsPerSecond} pps`).join(', ')}`,
  );
  if (producers.some((p) => p.packetsPerSecond === 0))
    throw new Error('a producer sends no RTP; the WebRTC session did not come up');
  return producers;
}

/** Measures with no viewer, then adds viewersPerStep at a time until saturation or the step bound. */
async function addViewersUntilSaturated(
  rig: MediaRig,
  plan: MediaPlan,
  baselineInputPps: number,
): Promise<Ramp> {
  const steps: Step[] = [await measureStep(rig, plan, baselineInputPps)];
  progress(`0 consumers: worker ${steps[0]!.workerCorePercent}% of a core`);
  let saturation: Step | undefined;
  let workerStalled: string | null = null;
  while (rig.viewerCount < plan.maxViewers) {
    let step: Step;
    try {
      for (let i = 0; i < plan.viewersPerStep; i++) await rig.addViewer();
      await sleep(plan.settleMs);
      step = await measureStep(rig, plan, baselineInputPps);
    } catch (err) {
      // A worker too busy to answer its channel (mediasoup's request timeout) is past saturation.
      workerStalled = `${(err as Error).message} after ${rig.consumers.length} consumers`;
      progress(`worker stalled: ${workerStalled}`);
      saturation = steps[steps.length - 1];
      break;
    }
    steps.push(step);
    progress(
      `${step.consumers} consumers: worker ${step.workerCorePercent}% of a core, delivered ${step.deliveredRatio}, ` +
        `${step.forwardedPacketsPerSecond} pkt/s (${step.forwardedMbps} Mbit/s) out, input ${step.producerInputRatio} ${describeEncoders(step.encoders)}; bench ${step.benchCorePercent}%, load ${step.loadAvg1m}`,
    );
    if (step.workerCorePercent >= SATURATED_CORE_PERCENT || step.deliveredRatio < MIN_DELIVERED_RATIO) {
      saturation = step;
      break;
    }
  }
  return { steps, saturation, workerStalled };
}

/**
 * The saturated step is left out of the lines (past saturation the worker no longer scales linearly)
 * unless too few steps remain.
 */
function fitCost(ramp: Ramp, packetsPerConsumer: number): CostFit {
  const { steps, saturation } = ramp;
  const unsaturated = steps.length > 2 ? steps.filter((s) => s !== saturation) : steps;
  const fit = linearFit(unsaturated.map((s) => ({ x: s.consumers, y: s.workerCorePercent })));
  // The same line over packets forwarded: robust to producers changing their rate between steps.
  const packetFit = linearFit(
    unsaturated.map((s) => ({ x: s.forwardedPacketsPerSecond, y: s.workerCorePercent })),
  );
  const atFullCore =
    packetFit.slope > 0
      ? Math.round((100 - packetFit.intercept) / (packetFit.slope * packetsPerConsumer))
      : Infinity;
  const atFullCoreByConsumers = fit.slope > 0 ? Math.round((100 - fit.intercept) / fit.slope) : Infinity;
  return { fit, packetFit, packetsPerConsumer, atFullCore, atFullCoreByConsumers };
}

function consumersTarget(ramp: Ramp, cost: CostFit): BenchResult['targets'][number] {
  const { saturation } = ramp;
  const last = ramp.steps[ramp.steps.length - 1]!;
  return {
    name: 'consumers per worker at one core (vs documented ~500)',
    target: `~${DOCUMENTED_CONSUMERS_PER_WORKER}`,
    measured:
      `${cost.atFullCore} at a full core (${round(cost.packetFit.slope * 10_000, 2)} µs/packet, ${round(cost.packetsPerConsumer, 1)} packets/s per consumer); ` +
      (saturation
        ? `this run saturated at ${saturation.consumers} with the worker at ${saturation.workerCorePercent}% of a core (load avg ${saturation.loadAvg1m})`
        : `not saturated by ${last.consumers} (${last.workerCorePercent}% of a core)`),
    met: cost.atFullCore >= DOCUMENTED_CONSUMERS_PER_WORKER,
  };
}

function summaryRows(steps: readonly Step[]): (string | number)[][] {
  return [
    [
      'consumers',
      'worker % core',
      'delivered',
      'input',
      'pkt/s out',
      'Mbit/s out',
      'bench % core',
      'load avg',
    ],
    ...steps.map((s) => [
      s.consumers,
      s.workerCorePercent,
      s.deliveredRatio,
      s.producerInputRatio,
      s.forwardedPacketsPerSecond,
      s.forwardedMbps,
      s.benchCorePercent,
      s.loadAvg1m,
    ]),
  ];
}
