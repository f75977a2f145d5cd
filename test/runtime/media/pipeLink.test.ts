/**
 * Pipes between two legs of a room on real mediasoup workers of the engine installed here: two workers
 * on two addresses (127.0.130.1 and 127.0.131.1, as two regions' media servers would be), routers with
 * the room codecs, RTP from a UDP client into a producer on one leg and out of a consumer on the other.
 * The tests play the control channel themselves: they exchange `describe()`s and carry each link's
 * pipe-out events to the other side, as the media servers will.
 */
import { once } from 'node:events';
import pino from 'pino';
import { ROOM_MEDIA_CODECS } from '../../../runtime/media/codecs';
import {
  loadMediaEngine,
  pipeEndpoint,
  type EngineWorker,
  type MediaEngine,
  type MsProducer,
  type MsRouter,
} from '../../../runtime/media/engine';
import type { Logger } from '../../../runtime/media/logger';
import { PipeLink, type PipeLinkCloseReason } from '../../../runtime/media/PipeLink';
import { RtpReceiver, RtpSender, UdpRelay, sleep, waitFor } from './rtpFixtures';

jest.setTimeout(30_000);

const IP_A = '127.0.130.1';
const IP_B = '127.0.131.1';
const PIPE_PORTS = { min: 26_000, max: 26_999 };
/** Ports of each worker: slices of the pipe range (3.8 pipes bind from their worker's RTC range). */
const RANGE_A = { rtcMinPort: 26_000, rtcMaxPort: 26_399 };
const RANGE_B = { rtcMinPort: 26_400, rtcMaxPort: 26_799 };
/** A third worker, killed by one test. */
const RANGE_C = { rtcMinPort: 26_800, rtcMaxPort: 26_999 };
/** Default silence window plus the detector's check interval and scheduling slack on a busy machine. */
const DETECTION_BOUND_MS = 1_500;

let engine: MediaEngine;
let workerA: EngineWorker;
let workerB: EngineWorker;
const logLines: string[] = [];
const logger: Logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
let cleanup: Array<() => void> = [];

beforeAll(async () => {
  engine = loadMediaEngine();
  workerA = await engine.createWorker({
    index: 0,
    logLevel: 'warn',
    listenIp: IP_A,
    announcedIp: IP_A,
    ...RANGE_A,
  });
  workerB = await engine.createWorker({
    index: 1,
    logLevel: 'warn',
    listenIp: IP_B,
    announcedIp: IP_B,
    ...RANGE_B,
  });
});

afterEach(() => {
  for (const step of cleanup.reverse()) step();
  cleanup = [];
});

afterAll(() => {
  workerA?.close();
  workerB?.close();
});

async function router(worker: EngineWorker): Promise<MsRouter> {
  const created = await worker.createRouter(ROOM_MEDIA_CODECS);
  cleanup.push(() => created.close());
  return created;
}

async function link(worker: EngineWorker, on: MsRouter, remoteLeg: string): Promise<PipeLink> {
  const created = await PipeLink.create({ worker, router: on, portRange: PIPE_PORTS, remoteLeg, logger });
  cleanup.push(() => created.close());
  return created;
}

/** Two legs of one room, one on each worker, with a link each way, not yet connected. */
async function twoLegs() {
  const routerA = await router(workerA);
  const routerB = await router(workerB);
  const a = await link(workerA, routerA, 'leg-b');
  const b = await link(workerB, routerB, 'leg-a');
  return { routerA, routerB, a, b };
}

async function connect(a: PipeLink, b: PipeLink): Promise<void> {
  const [toA, toB] = [a.describe(), b.describe()];
  await Promise.all([a.connect(toB), b.connect(toA)]);
}

/** What the control channel will carry: a link's pipe-out events reach the other side's link. */
function carryControl(from: PipeLink, to: PipeLink): void {
  from.on('pipeOutPaused', (producerId, paused) => void to.setPaused(producerId, paused));
  from.on('pipeOutClosed', (producerId) => to.closeProducer(producerId));
}

async function sender(on: MsRouter, kind: 'audio' | 'video', ip: string): Promise<RtpSender> {
  const started = await RtpSender.start(on, kind, ip);
  cleanup.push(() => started.stop());
  return started;
}

async function receiver(on: MsRouter, producerId: string, ip: string): Promise<RtpReceiver> {
  const started = await RtpReceiver.start(on, producerId, ip);
  cleanup.push(() => started.stop());
  return started;
}

async function byteCount(producer: MsProducer): Promise<number> {
  const stats = (await producer.getStats()) as Array<{ byteCount: number }>;
  return stats.reduce((sum, s) => sum + s.byteCount, 0);
}

/** Resolves with how long after `since` the event came. */
async function msUntil(emitter: PipeLink, event: 'silent' | 'heard', since: number): Promise<number> {
  await once(emitter, event);
  return performance.now() - since;
}

describe('the engine seam for pipes', () => {
  test('creates a pipe transport on the worker address, with SRTP keying of the engine', async () => {
    const on = await router(workerA);
    const transport = await workerA.createPipeTransport(on, { portRange: PIPE_PORTS });
    cleanup.push(() => transport.close());
    const endpoint = pipeEndpoint(transport);
    expect(endpoint.ip).toBe(IP_A);
    expect(endpoint.port).toBeGreaterThanOrEqual(PIPE_PORTS.min);
    expect(endpoint.port).toBeLessThanOrEqual(PIPE_PORTS.max);
    if (engine.flavour === 'legacy') expect(endpoint.port).toBeLessThanOrEqual(RANGE_A.rtcMaxPort);
    expect(transport.srtpParameters).toEqual({
      cryptoSuite: engine.flavour === 'legacy' ? 'AES_CM_128_HMAC_SHA1_80' : 'AEAD_AES_256_GCM',
      keyBase64: expect.stringMatching(/^[A-Za-z0-9+/]{20,}={0,2}$/),
    });
    await expect(
      workerA.createPipeTransport(on, { portRange: { min: 27_000, max: 26_000 } }),
    ).rejects.toThrow(
      'pipe port range 27000-26000 is not a range of UDP ports; give 1 <= min <= max <= 65535',
    );
  });

  test('a bare pipe whose producer is paused carries no RTP, and RTCP with gaps longer than a second (why links send a keepalive)', async () => {
    const [onA, onB] = [await router(workerA), await router(workerB)];
    const pipeA = await workerA.createPipeTransport(onA, { portRange: PIPE_PORTS });
    const pipeB = await workerB.createPipeTransport(onB, { portRange: PIPE_PORTS });
    cleanup.push(() => pipeA.close());
    cleanup.push(() => pipeB.close());
    const [endA, endB] = [pipeEndpoint(pipeA), pipeEndpoint(pipeB)];
    await pipeA.connect({ ...endB, srtpParameters: pipeB.srtpParameters });
    await pipeB.connect({ ...endA, srtpParameters: pipeA.srtpParameters });
    const audio = await sender(onA, 'audio', IP_A);
    const pipeConsumer = await pipeA.consume({ producerId: audio.producer.id });
    const pipeProducer = await pipeB.produce({
      id: audio.producer.id,
      kind: 'audio',
      rtpParameters: pipeConsumer.rtpParameters as Record<string, unknown>,
    });
    await waitFor(async () => (await byteCount(pipeProducer)) > 0, 'audio through the bare pipe');

    await audio.producer.pause();
    await sleep(200);
    const [before] = await pipeB.getStats();
    let last = before.bytesReceived;
    let lastChangeAt = performance.now();
    let longestGapMs = 0;
    const until = performance.now() + 3_000;
    while (performance.now() < until) {
      await sleep(100);
      const [now] = await pipeB.getStats();
      if (now.bytesReceived !== last) {
        last = now.bytesReceived;
        lastChangeAt = performance.now();
      }
      longestGapMs = Math.max(longestGapMs, performance.now() - lastChangeAt);
      expect(now.rtpBytesReceived).toBe(before.rtpBytesReceived);
    }
    // mediasoup spaces an audio stream's sender reports about 5 s apart, paused or not.
    expect(longestGapMs).toBeGreaterThan(1_500);
  });
});

describe('a pipe between two legs', () => {
  test('carries RTP from a producer on one leg to a consumer on the other, over SRTP, with RTX negotiated', async () => {
    const { routerA, routerB, a, b } = await twoLegs();
    const loads: string[] = [];
    a.on('loadChanged', () => loads.push('a'));
    b.on('loadChanged', () => loads.push('b'));
    const [toA, toB] = [a.describe(), b.describe()];
    expect(toA.endpoint.ip).toBe(IP_A);
    expect(toB.endpoint.ip).toBe(IP_B);
    await Promise.all([a.connect(toB), b.connect(toA)]);
    expect(a.connected && b.connected).toBe(true);

    const video = await sender(routerA, 'video', IP_A);
    const audio = await sender(routerA, 'audio', IP_A);
    const pipedVideo = await a.pipeOut(video.producer);
    const pipedAudio = await a.pipeOut(audio.producer);

    // RTX: a video/rtx codec bound to VP8, an RTX SSRC per encoding, and NACK feedback on VP8.
    const params = pipedVideo.rtpParameters as {
      codecs: Array<{
        mimeType: string;
        payloadType: number;
        parameters: { apt?: number };
        rtcpFeedback: unknown[];
      }>;
      encodings: Array<{ ssrc: number; rtx?: { ssrc: number } }>;
    };
    const vp8 = params.codecs.find((c) => c.mimeType === 'video/VP8')!;
    expect(params.codecs).toContainEqual(
      expect.objectContaining({ mimeType: 'video/rtx', parameters: { apt: vp8.payloadType } }),
    );
    expect(vp8.rtcpFeedback).toContainEqual({ type: 'nack', parameter: '' });
    expect(params.encodings[0].rtx?.ssrc).toEqual(expect.any(Number));
    expect(pipedVideo).toMatchObject({ producerId: video.producer.id, kind: 'video', paused: false });

    const videoIn = await b.pipeIn(pipedVideo);
    const audioIn = await b.pipeIn(pipedAudio);
    expect([videoIn.id, audioIn.id]).toEqual([video.producer.id, audio.producer.id]);

    const videoOut = await receiver(routerB, videoIn.id, IP_B);
    const audioOut = await receiver(routerB, audioIn.id, IP_B);
    await waitFor(() => videoOut.received >= 20 && audioOut.received >= 20, 'RTP through the pipe');
    for (const [out, from] of [
      [videoOut, video],
      [audioOut, audio],
    ] as const) {
      // The sender's own packets, in order, each once.
      expect(out.counters).toEqual([...out.counters].sort((x, y) => x - y));
      expect(new Set(out.counters).size).toBe(out.counters.length);
      expect(Math.max(...out.counters)).toBeLessThanOrEqual(from.sent);
    }
    expect(await byteCount(videoIn)).toBeGreaterThan(0);

    // Capacity hooks: what each side holds for load accounting (keepalives not counted).
    expect(a.counts).toEqual({ pipeTransports: 1, pipeConsumers: 2, pipeProducers: 0 });
    expect(b.counts).toEqual({ pipeTransports: 1, pipeConsumers: 0, pipeProducers: 2 });
    expect(loads.filter((l) => l === 'a')).toHaveLength(2);
    expect(loads.filter((l) => l === 'b')).toHaveLength(2);
    expect([...b.pipedIn.keys()]).toEqual([video.producer.id, audio.producer.id]);
    expect([...a.pipedOut.keys()]).toEqual([video.producer.id, audio.producer.id]);

    // The SRTP keys travel in the descriptions and never reach a log line.
    const logs = logLines.join('');
    expect(logs).toContain('"msg":"pipe connected"');
    for (const description of [toA, toB]) expect(logs).not.toContain(description.srtpParameters.keyBase64);
  });

  test('pipes a producer once per link: repeated and concurrent pipeOut and pipeIn give the same pipe', async () => {
    const { routerA, routerB, a, b } = await twoLegs();
    await connect(a, b);
    const video = await sender(routerA, 'video', IP_A);

    const [first, second] = await Promise.all([a.pipeOut(video.producer), a.pipeOut(video.producer)]);
    expect(second).toEqual(first);
    expect(await a.pipeOut(video.producer)).toEqual(first);
    expect(a.counts.pipeConsumers).toBe(1);

    const [inFirst, inSecond] = await Promise.all([b.pipeIn(first), b.pipeIn(first)]);
    expect(inSecond).toBe(inFirst);
    // A replay after a healed partition: the same producer, with the remote's state of when it sent.
    const replayed = await b.pipeIn({ ...first, paused: true });
    expect(replayed).toBe(inFirst);
    expect(replayed.paused).toBe(true);
    await b.pipeIn(first);
    expect(replayed.paused).toBe(false);
    expect(b.counts.pipeProducers).toBe(1);

    // One pipe, so every packet arrives once.
    const out = await receiver(routerB, inFirst.id, IP_B);
    await waitFor(() => out.received >= 20, 'RTP through the pipe');
    expect(new Set(out.counters).size).toBe(out.counters.length);
  });

  test('a pause asked for while the pipe producer is being created is applied before pipeIn resolves', async () => {
    const { routerA, a, b } = await twoLegs();
    await connect(a, b);
    const video = await sender(routerA, 'video', IP_A);
    const piped = await a.pipeOut(video.producer);
    const creating = b.pipeIn(piped);
    const pausing = b.setPaused(piped.producerId, true);
    const producer = await creating;
    await pausing;
    expect(producer.paused).toBe(true);
  });

  test('a pause at the origin pauses the far pipe producer and its consumers; a resume brings media back', async () => {
    const { routerA, routerB, a, b } = await twoLegs();
    await connect(a, b);
    carryControl(a, b);
    const video = await sender(routerA, 'video', IP_A);
    const pipeProducer = await b.pipeIn(await a.pipeOut(video.producer));
    const out = await receiver(routerB, pipeProducer.id, IP_B);
    const consumerEvents: string[] = [];
    out.consumer.on('producerpause', () => consumerEvents.push('pause'));
    out.consumer.on('producerresume', () => consumerEvents.push('resume'));
    await waitFor(() => out.received >= 10, 'RTP before the pause');

    const paused = once(a, 'pipeOutPaused');
    await video.producer.pause();
    expect(await paused).toEqual([video.producer.id, true]);
    await waitFor(() => pipeProducer.paused && consumerEvents.includes('pause'), 'the far side to pause');
    await sleep(300);
    const whilePaused = out.received;
    await sleep(500);
    expect(out.received).toBe(whilePaused);

    await video.producer.resume();
    await waitFor(() => !pipeProducer.paused && consumerEvents.includes('resume'), 'the far side to resume');
    await waitFor(() => out.received >= whilePaused + 10, 'RTP after the resume');
    expect(consumerEvents).toEqual(['pause', 'resume']);
  });

  test('closing the origin producer closes the far pipe producer and its consumers, once', async () => {
    const { routerA, routerB, a, b } = await twoLegs();
    await connect(a, b);
    carryControl(a, b);
    const video = await sender(routerA, 'video', IP_A);
    const piped = await a.pipeOut(video.producer);
    const pipeProducer = await b.pipeIn(piped);
    const out = await receiver(routerB, pipeProducer.id, IP_B);
    await waitFor(() => out.received >= 5, 'RTP before the close');
    const outClosed: string[] = [];
    const inClosed: string[] = [];
    a.on('pipeOutClosed', (id) => outClosed.push(id));
    b.on('pipeInClosed', (id) => inClosed.push(id));

    video.producer.close();
    await waitFor(() => out.consumer.closed, "the far consumer's close");
    expect(pipeProducer.closed).toBe(true);
    expect(outClosed).toEqual([video.producer.id]);
    expect(inClosed).toEqual([video.producer.id]);
    expect(a.counts).toEqual({ pipeTransports: 1, pipeConsumers: 0, pipeProducers: 0 });
    expect(b.counts).toEqual({ pipeTransports: 1, pipeConsumers: 0, pipeProducers: 0 });

    // Idempotent on both sides, and final: a late replay of the pipe does not bring it back.
    b.closeProducer(video.producer.id);
    a.closeProducer(video.producer.id);
    expect(inClosed).toHaveLength(1);
    await expect(b.pipeIn(piped)).rejects.toThrow(
      `producer "${video.producer.id}" was closed on the pipe to leg "leg-a"; it is not piped again`,
    );
    expect(b.counts.pipeProducers).toBe(0);
  });

  test('close is idempotent and cascades; the other side hears silence within about a second', async () => {
    const { routerA, routerB, a, b } = await twoLegs();
    await connect(a, b);
    const video = await sender(routerA, 'video', IP_A);
    const pipeProducer = await b.pipeIn(await a.pipeOut(video.producer));
    const out = await receiver(routerB, pipeProducer.id, IP_B);
    await waitFor(() => out.received >= 5 && a.hasHeardRemote && b.hasHeardRemote, 'media and keepalives');
    const closes: PipeLinkCloseReason[] = [];
    const inClosed: string[] = [];
    b.on('close', (reason) => closes.push(reason));
    b.on('pipeInClosed', (id) => inClosed.push(id));

    const closedAt = performance.now();
    const silence = msUntil(a, 'silent', closedAt);
    b.close();
    b.close('remote_gone');
    expect(closes).toEqual(['closed']);
    expect(inClosed).toEqual([pipeProducer.id]);
    expect(b.counts).toEqual({ pipeTransports: 0, pipeConsumers: 0, pipeProducers: 0 });
    await waitFor(() => out.consumer.closed, "the consumer's close");
    expect(() => b.describe()).toThrow(/is closed/);
    await expect(b.pipeIn(await a.pipeOut(video.producer))).rejects.toThrow(/is closed/);

    expect(await silence).toBeLessThan(DETECTION_BOUND_MS);
    expect(a.closed).toBe(false);
  });

  test('a paused room is not a dead leg: the keepalive is heard while no media crosses', async () => {
    const { routerA, a, b } = await twoLegs();
    await connect(a, b);
    carryControl(a, b);
    const video = await sender(routerA, 'video', IP_A);
    const audio = await sender(routerA, 'audio', IP_A);
    const videoIn = await b.pipeIn(await a.pipeOut(video.producer));
    const audioIn = await b.pipeIn(await a.pipeOut(audio.producer));
    await waitFor(async () => (await byteCount(videoIn)) > 0 && (await byteCount(audioIn)) > 0, 'media');
    const silences: string[] = [];
    a.on('silent', () => silences.push('a'));
    b.on('silent', () => silences.push('b'));

    await Promise.all([video.producer.pause(), audio.producer.pause()]);
    await waitFor(() => videoIn.paused && audioIn.paused, 'the pipe producers to pause');
    await sleep(300);
    const mediaBytes = (await byteCount(videoIn)) + (await byteCount(audioIn));
    // Twice the silence window: RTCP alone would leave gaps this long (an audio stream's report comes
    // about every 5 s), the keepalive never does.
    await sleep(2_000);
    expect((await byteCount(videoIn)) + (await byteCount(audioIn))).toBe(mediaBytes);
    expect(silences).toEqual([]);
    expect(a.hasHeardRemote && b.hasHeardRemote).toBe(true);
  });

  test('a blackholed path: both legs hear silence within about a second, and each other again when it heals', async () => {
    const { a, b } = await twoLegs();
    const relay = await UdpRelay.start(IP_A, IP_B);
    cleanup.push(() => relay.close());
    const [toA, toB] = [a.describe(), b.describe()];
    relay.relayBetween(toA.endpoint, toB.endpoint);
    await Promise.all([
      a.connect({ ...toB, endpoint: relay.forA }),
      b.connect({ ...toA, endpoint: relay.forB }),
    ]);
    await waitFor(() => a.hasHeardRemote && b.hasHeardRemote, 'keepalives through the relay');

    const cutAt = performance.now();
    const silences = Promise.all([msUntil(a, 'silent', cutAt), msUntil(b, 'silent', cutAt)]);
    relay.blackhole = true;
    for (const ms of await silences) expect(ms).toBeLessThan(DETECTION_BOUND_MS);

    const heard = Promise.all([once(a, 'heard'), once(b, 'heard')]);
    relay.blackhole = false;
    await heard;
    expect([a.closed, b.closed]).toEqual([false, false]);
  });

  test('a killed worker: the surviving leg hears silence within about a second; the dead leg closes', async () => {
    const workerC = await engine.createWorker({
      index: 2,
      logLevel: 'none',
      listenIp: IP_B,
      announcedIp: IP_B,
      ...RANGE_C,
    });
    cleanup.push(() => workerC.close());
    const routerA = await router(workerA);
    const a = await link(workerA, routerA, 'leg-c');
    const c = await link(workerC, await router(workerC), 'leg-a');
    await connect(a, c);
    await waitFor(() => a.hasHeardRemote && c.hasHeardRemote, 'keepalives');
    const cClosed = once(c, 'close');

    const killedAt = performance.now();
    const silence = msUntil(a, 'silent', killedAt);
    process.kill(workerC.pid, 'SIGKILL');
    expect(await silence).toBeLessThan(DETECTION_BOUND_MS);
    expect(await cClosed).toEqual(['router_closed']);
    expect(a.closed).toBe(false);
  });

  test('connect: the same description again is a no-op; another, a foreign SRTP suite or a malformed one is refused', async () => {
    const { a, b } = await twoLegs();
    const toB = b.describe();
    await a.connect(toB);
    await a.connect(toB);
    await expect(a.connect({ ...toB, endpoint: { ip: IP_B, port: toB.endpoint.port + 1 } })).rejects.toThrow(
      `pipe to leg "leg-b" is already connected to ${IP_B}:${toB.endpoint.port}; close it and open a new one`,
    );

    const { a: fresh } = await twoLegs();
    await expect(
      fresh.connect({ ...toB, srtpParameters: { cryptoSuite: 'AEAD_AES_256_GCM', keyBase64: 'a2V5' } }),
    ).rejects.toThrow(/offers SRTP AEAD_AES_256_GCM .*both legs must run the same mediasoup/);
    await expect(fresh.connect({ ...toB, endpoint: { ip: 'media.example.com', port: 1 } })).rejects.toThrow(
      /^invalid pipe description from leg "leg-b": endpoint\.ip: /,
    );
    await expect(
      fresh.connect({ ...toB, keepalive: { ...toB.keepalive, kind: 'data' as 'audio' } }),
    ).rejects.toThrow(/keepalive\.kind/);
    // Refused before anything reached mediasoup: the link is still open and connects afterwards.
    expect(fresh.closed).toBe(false);
    await fresh.connect(toB);
  });

  test('refuses a silence window that lost keepalives alone could fill', async () => {
    const on = await router(workerA);
    await expect(
      PipeLink.create({
        worker: workerA,
        router: on,
        portRange: PIPE_PORTS,
        remoteLeg: 'leg-b',
        logger,
        silence: { windowMs: 500 },
      }),
    ).rejects.toThrow(
      'pipe silence window 500 ms is shorter than 600 ms (three keepalive periods); lost keepalives would look like a dead leg',
    );
  });
});
