/**
 * Child process of `bench cascade` (parts 1 and 2, see ../cascade.ts): the pipe ramp between two
 * mediasoup workers and one pipe hop's added latency. It runs apart from the bench's own process because
 * both this rig and the chaos fleet drive libwebrtc (@roamhq/wrtc) in-process, and one process that
 * tears down one set of peer connections and builds another has crashed in the native module.
 *
 * IPC: ← { type: 'run', plan } → { type: 'progress', line }*, then { type: 'result', result } or
 * { type: 'error', message }; the process exits after either.
 */
import * as dgram from 'node:dgram';
import * as path from 'node:path';
import pino from 'pino';
import { ROOM_MEDIA_CODECS } from '../../../runtime/media/codecs';
import type { EngineWorker, MsConsumer, MsProducer, MsRouter } from '../../../runtime/media/engine';
import { PipeLink } from '../../../runtime/media/PipeLink';
import { linearFit } from './linearFit';
import { MediaRig, addPlainViewer } from './mediaRig';
import { cpuMsOf, ipcReady, machineLoad, sleep, spawnTs, stopAll, type BenchChild } from './processes';
import { percentileOf, round } from '../report';

export interface PipePlan {
  /** Remote legs the peer is piped to at the last step. */
  readonly maxLegs: number;
  readonly settleMs: number;
  readonly windowMs: number;
  readonly latencyWindowMs: number;
}

export interface PipeResult {
  readonly cost: PipeCost;
  readonly latency: HopLatency;
  readonly engine: string;
}

const IP_A = '127.0.61.1';
const IP_B = '127.0.62.1';
/** 3.8 binds pipes from the worker's RTC range; each worker gets its own slice. */
const RANGE_A = { rtcMinPort: 36_000, rtcMaxPort: 36_499 };
const RANGE_B = { rtcMinPort: 36_500, rtcMaxPort: 36_999 };
const PIPE_PORTS = { min: 36_000, max: 36_999 };
const VIDEO = { width: 640, height: 360, fps: 30, maxBitrateBps: 800_000 };

/** One step of the pipe ramp. */
export interface PipeStep {
  readonly legs: number;
  readonly senderCorePercent: number;
  readonly receiverCorePercent: number;
  /** Wire bytes per second leaving leg A on all its pipes (SRTP, RTCP and keepalives included). */
  readonly pipeWireKbps: number;
  readonly loadAvg1m: number;
}

export interface PipeCost {
  readonly steps: PipeStep[];
  /** % of one core per piped peer (video + audio to one more leg), from the lines' slopes. */
  readonly senderCorePercentPerPipedPeer: number;
  readonly receiverCorePercentPerPipedPeer: number;
  readonly senderFitR2: number;
  readonly receiverFitR2: number;
  /** What one piped peer puts on the wire between two regions, kbps. */
  readonly wireKbpsPerPipedPeer: number;
  /** What the peer itself sends to its own leg (the producers' input), kbps. */
  readonly producerKbps: number;
}

export interface HopLatency {
  readonly audioPackets: { n: number; p50Ms: number; p95Ms: number; maxMs: number };
  readonly videoFrames: { n: number; p50Ms: number; p95Ms: number; maxMs: number };
  /** Packets seen on one viewer only (lost, or outside the window's edges). */
  readonly unmatched: number;
}

export async function measurePipes(
  plan: PipePlan,
): Promise<{ cost: PipeCost; latency: HopLatency; engine: string }> {
  let sink: BenchChild | undefined;
  let rig: MediaRig | undefined;
  let workerB: EngineWorker | undefined;
  const links: PipeLink[] = [];
  const logger = pino({ level: 'warn' });
  try {
    sink = spawnTs('UDP sink', path.join(__dirname, 'udpSinkProcess.ts'), { ipc: true });
    const { port: sinkPort } = await ipcReady<{ port: number }>(sink);
    rig = await MediaRig.create({ ...RANGE_A, sinkPort, listenIp: IP_A });
    const engine = `${rig.engine.flavour} mediasoup ${rig.engine.version}`;
    workerB = await rig.engine.createWorker({
      index: 1,
      logLevel: 'warn',
      listenIp: IP_B,
      announcedIp: IP_B,
      ...RANGE_B,
    });
    report(
      `pipes: ${engine}, leg A worker ${rig.workerPid} on ${IP_A}, leg B worker ${workerB.pid} on ${IP_B}`,
    );
    await rig.addProducerPeer(VIDEO, true);
    await sleep(plan.settleMs * 2);

    const legOf = async (): Promise<{ router: MsRouter; near: PipeLink; far: PipeLink }> => {
      const router = await workerB!.createRouter(ROOM_MEDIA_CODECS);
      const near = await PipeLink.create({
        worker: rig!.worker,
        router: rig!.router,
        portRange: PIPE_PORTS,
        remoteLeg: `leg-${links.length / 2 + 1}`,
        logger,
      });
      const far = await PipeLink.create({
        worker: workerB!,
        router,
        portRange: PIPE_PORTS,
        remoteLeg: 'leg-a',
        logger,
      });
      links.push(near, far);
      const [toNear, toFar] = [near.describe(), far.describe()];
      await Promise.all([near.connect(toFar), far.connect(toNear)]);
      for (const producer of rig!.producers) await far.pipeIn(await near.pipeOut(producer));
      return { router, near, far };
    };

    const steps: PipeStep[] = [await measurePipeStep(rig, workerB, [], plan)];
    const legs: Array<{ router: MsRouter; near: PipeLink; far: PipeLink }> = [];
    report(`  0 remote legs: ${describeStep(steps[0]!)}`);
    for (let n = 1; n <= plan.maxLegs; n++) {
      legs.push(await legOf());
      await sleep(plan.settleMs);
      const step = await measurePipeStep(
        rig,
        workerB,
        legs.map((l) => l.near),
        plan,
      );
      steps.push(step);
      report(`  ${n} remote leg(s): ${describeStep(step)}`);
    }
    const producerKbps = await producerInputKbps(rig.producers, plan.windowMs);
    const sender = linearFit(steps.map((s) => ({ x: s.legs, y: s.senderCorePercent })));
    const receiver = linearFit(steps.map((s) => ({ x: s.legs, y: s.receiverCorePercent })));
    const piped = steps.filter((s) => s.legs > 0);
    const cost: PipeCost = {
      steps,
      senderCorePercentPerPipedPeer: round(sender.slope, 2),
      receiverCorePercentPerPipedPeer: round(receiver.slope, 2),
      senderFitR2: round(sender.r2, 3),
      receiverFitR2: round(receiver.r2, 3),
      wireKbpsPerPipedPeer: round(
        piped.reduce((sum, s) => sum + s.pipeWireKbps / s.legs, 0) / Math.max(1, piped.length),
        0,
      ),
      producerKbps: round(producerKbps, 0),
    };

    report(
      `hop latency: a direct viewer on leg A and one behind a pipe on a remote leg, ${plan.latencyWindowMs / 1000} s`,
    );
    const first = legs[0]!;
    const latency = await measureHopLatency(
      rig,
      { router: first.router, producers: [...first.far.pipedIn.values()] },
      plan.latencyWindowMs,
    );
    return { cost, latency, engine };
  } finally {
    for (const link of links) link.close();
    rig?.close();
    workerB?.close();
    await stopAll([sink]);
  }
}

function describeStep(s: PipeStep): string {
  return `leg A ${s.senderCorePercent}% of a core, leg B ${s.receiverCorePercent}%, pipes ${s.pipeWireKbps} kbps out, load ${s.loadAvg1m}`;
}

async function measurePipeStep(
  rig: MediaRig,
  workerB: EngineWorker,
  nearLinks: readonly PipeLink[],
  plan: PipePlan,
): Promise<PipeStep> {
  const bytes = async () =>
    (await Promise.all(nearLinks.map((l) => l.transportBytes()))).reduce((sum, b) => sum + b.sent, 0);
  const bytes0 = await bytes();
  const a0 = cpuMsOf(rig.workerPid);
  const b0 = cpuMsOf(workerB.pid);
  const t0 = performance.now();
  await sleep(plan.windowMs);
  const wallMs = performance.now() - t0;
  const a1 = cpuMsOf(rig.workerPid);
  const b1 = cpuMsOf(workerB.pid);
  const bytes1 = await bytes();
  return {
    legs: nearLinks.length,
    senderCorePercent: round(((a1 - a0) / wallMs) * 100, 2),
    receiverCorePercent: round(((b1 - b0) / wallMs) * 100, 2),
    pipeWireKbps: round(((bytes1 - bytes0) * 8) / wallMs, 0),
    loadAvg1m: machineLoad().loadAvg1m,
  };
}

async function producerInputKbps(producers: readonly MsProducer[], windowMs: number): Promise<number> {
  const total = async () => {
    const all = await Promise.all(
      producers.map((p) => p.getStats() as Promise<Array<{ type: string; byteCount?: number }>>),
    );
    return all
      .flat()
      .filter((s) => s.type === 'inbound-rtp')
      .reduce((sum, s) => sum + (s.byteCount ?? 0), 0);
  };
  const b0 = await total();
  const t0 = performance.now();
  await sleep(windowMs);
  return (((await total()) - b0) * 8) / (performance.now() - t0);
}

/** Arrival times of RTP packets at one plain viewer, keyed by what identifies the same packet on another. */
class ArrivalLog {
  readonly times = new Map<string, number>();
  private readonly socket = dgram.createSocket('udp4');

  async bind(ip: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(0, ip, () => resolve());
    });
    return this.socket.address().port;
  }

  /** Records media of `consumers` only (not RTX or probation): audio per packet, video per frame end. */
  listen(consumers: readonly MsConsumer[]): void {
    const kindBySsrc = new Map(
      consumers.map((c) => [
        (c.rtpParameters as { encodings: Array<{ ssrc: number }> }).encodings[0]!.ssrc,
        c.kind,
      ]),
    );
    this.socket.on('message', (packet) => {
      const at = performance.now();
      if (packet.length < 12 || packet[0]! >> 6 !== 2) return;
      const payloadType = packet[1]! & 0x7f;
      if (payloadType >= 72 && payloadType <= 76) return; // RTCP on the muxed port
      const kind = kindBySsrc.get(packet.readUInt32BE(8));
      if (!kind) return;
      const marker = (packet[1]! & 0x80) !== 0;
      if (kind === 'video' && !marker) return;
      const key = `${kind}:${packet.readUInt32BE(4)}`;
      if (!this.times.has(key)) this.times.set(key, at);
    });
  }

  close(): void {
    this.socket.close();
  }
}

async function measureHopLatency(
  rig: MediaRig,
  remote: { router: MsRouter; producers: MsProducer[] },
  windowMs: number,
): Promise<HopLatency> {
  const direct = new ArrivalLog();
  const piped = new ArrivalLog();
  const directViewer = await addPlainViewer(rig.engine, rig.router, rig.producers, {
    ip: IP_A,
    port: await direct.bind(IP_A),
    srtp: false,
  });
  const pipedViewer = await addPlainViewer(rig.engine, remote.router, remote.producers, {
    ip: IP_B,
    port: await piped.bind(IP_B),
    srtp: false,
  });
  try {
    direct.listen(directViewer.consumers);
    piped.listen(pipedViewer.consumers);
    // Both viewers ask for a key frame on creation: let video start on both before counting.
    await sleep(1_500);
    direct.times.clear();
    piped.times.clear();
    await sleep(windowMs);
  } finally {
    directViewer.transport.close();
    pipedViewer.transport.close();
    direct.close();
    piped.close();
  }
  const diffs = { audio: [] as number[], video: [] as number[] };
  let unmatched = 0;
  for (const [key, at] of piped.times) {
    const before = direct.times.get(key);
    if (before === undefined) {
      unmatched++;
      continue;
    }
    diffs[key.startsWith('audio') ? 'audio' : 'video'].push(at - before);
  }
  unmatched += [...direct.times.keys()].filter((k) => !piped.times.has(k)).length;
  const stats = (values: number[]) => ({
    n: values.length,
    p50Ms: round(percentileOf(values, 50), 3),
    p95Ms: round(percentileOf(values, 95), 3),
    maxMs: values.length ? round(Math.max(...values), 3) : NaN,
  });
  return { audioPackets: stats(diffs.audio), videoFrames: stats(diffs.video), unmatched };
}

function report(line: string): void {
  process.send?.({ type: 'progress', line });
}

if (require.main === module) {
  process.once('message', (msg: { type?: string; plan?: PipePlan }) => {
    if (msg.type !== 'run' || !msg.plan) return;
    measurePipes(msg.plan).then(
      (result) => process.send!({ type: 'result', result }, () => process.exit(0)),
      (err: unknown) =>
        process.send!({ type: 'error', message: (err as Error).stack ?? String(err) }, () => process.exit(1)),
    );
  });
  process.send!({ type: 'ready' });
}
