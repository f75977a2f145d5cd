/**
 * The media bench's rig around one mediasoup worker (the engine of runtime/media/engine, the room
 * codecs of runtime/media/codecs.ts):
 *   - producers: the synthetic sources of scripts/support/syntheticMedia.ts (libwebrtc encoding a
 *     moving VP8 test pattern and an Opus tone) sent by mediasoup-client over a real WebRtcTransport
 *     (ICE, DTLS, SRTP) — the same path a browser takes, driven in-process instead of over signaling;
 *   - viewers: one PlainTransport each (SRTP on, so the worker encrypts every packet as it would for a
 *     WebRTC peer) consuming every producer and sending to a UDP sink that never reads. A viewer sends
 *     no RTCP back: no NACKs or receiver reports, so this is forwarding cost without loss recovery.
 */
import { randomBytes } from 'node:crypto';
import { Device, type types as ms } from 'mediasoup-client';
import { INITIAL_OUTGOING_BITRATE_BPS, ROOM_MEDIA_CODECS } from '../../../runtime/media/codecs';
import {
  loadMediaEngine,
  type EngineWorker,
  type MediaEngine,
  type MsConsumer,
  type MsProducer,
  type MsRouter,
  type MsWebRtcTransport,
} from '../../../runtime/media/engine';
import { installWrtcGlobals, SyntheticAudioSource, SyntheticVideoSource } from '../../support/syntheticMedia';

const SRTP_SUITE = 'AES_CM_128_HMAC_SHA1_80';
/** 16-byte key + 14-byte salt of AES_CM_128_HMAC_SHA1_80. */
const SRTP_KEY_BYTES = 30;

export interface VideoSettings {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly maxBitrateBps: number;
}

/** The slice of PlainTransport both engine versions share (the engine layer has no plain transports). */
export interface PlainTransport {
  readonly id: string;
  connect(args: {
    ip: string;
    port: number;
    srtpParameters?: { cryptoSuite: string; keyBase64: string };
  }): Promise<void>;
  consume(args: { producerId: string; rtpCapabilities: unknown; paused?: boolean }): Promise<MsConsumer>;
  close(): void;
}

interface PlainCapableRouter extends MsRouter {
  createPlainTransport(options: Record<string, unknown>): Promise<PlainTransport>;
}

export interface EncoderState {
  readonly frameWidth: number | null;
  readonly framesPerSecond: number | null;
  /** libwebrtc's reason for sending less than it could: 'cpu', 'bandwidth' or 'none'. */
  readonly qualityLimitationReason: string | null;
  readonly availableOutgoingBitrate: number | null;
}

export interface RtpCounters {
  readonly packets: number;
  readonly bytes: number;
}

export class MediaRig {
  readonly producers: MsProducer[] = [];
  readonly consumers: MsConsumer[] = [];
  private readonly viewers: PlainTransport[] = [];
  private readonly sources: Array<{ stop(): void }> = [];
  private readonly clientTransports: ms.Transport[] = [];
  private readonly serverTransports: MsWebRtcTransport[] = [];

  private constructor(
    readonly engine: MediaEngine,
    readonly worker: EngineWorker,
    readonly router: MsRouter,
    private readonly sinkPort: number,
  ) {}

  static async create(opts: {
    rtcMinPort: number;
    rtcMaxPort: number;
    sinkPort: number;
    /** @default '127.0.0.1' */
    listenIp?: string;
  }): Promise<MediaRig> {
    const engine = loadMediaEngine();
    const listenIp = opts.listenIp ?? '127.0.0.1';
    const worker = await engine.createWorker({
      index: 0,
      logLevel: 'warn',
      rtcMinPort: opts.rtcMinPort,
      rtcMaxPort: opts.rtcMaxPort,
      listenIp,
      announcedIp: listenIp,
    });
    const router = await worker.createRouter(ROOM_MEDIA_CODECS);
    return new MediaRig(engine, worker, router, opts.sinkPort);
  }

  get workerPid(): number {
    return this.worker.pid;
  }

  /** One synthetic peer producing video (and audio when asked) over its own WebRtcTransport. */
  async addProducerPeer(video: VideoSettings, withAudio: boolean): Promise<void> {
    installWrtcGlobals();
    const serverTransport = await this.worker.createWebRtcTransport(this.router, {
      initialAvailableOutgoingBitrate: INITIAL_OUTGOING_BITRATE_BPS,
    });
    this.serverTransports.push(serverTransport);
    const device = new Device({ handlerName: 'Chrome111' });
    await device.load({ routerRtpCapabilities: this.router.rtpCapabilities as ms.RtpCapabilities });
    const transport = device.createSendTransport({
      id: serverTransport.id,
      iceParameters: serverTransport.iceParameters as ms.IceParameters,
      iceCandidates: serverTransport.iceCandidates as ms.IceCandidate[],
      dtlsParameters: serverTransport.dtlsParameters as ms.DtlsParameters,
    });
    this.clientTransports.push(transport);
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      serverTransport
        .connect({ dtlsParameters: dtlsParameters as unknown as Record<string, unknown> })
        .then(() => callback(), errback);
    });
    transport.on('produce', ({ kind, rtpParameters }, callback, errback) => {
      serverTransport
        .produce({ kind, rtpParameters: rtpParameters as unknown as Record<string, unknown> })
        .then((producer) => {
          this.producers.push(producer);
          callback({ id: producer.id });
        }, errback);
    });
    const videoSource = new SyntheticVideoSource(video.width, video.height, video.fps);
    this.sources.push(videoSource);
    await transport.produce({ track: videoSource.track, encodings: [{ maxBitrate: video.maxBitrateBps }] });
    if (withAudio) {
      const audioSource = new SyntheticAudioSource();
      this.sources.push(audioSource);
      await transport.produce({ track: audioSource.track });
    }
  }

  /** A viewer consuming every producer through one SRTP PlainTransport aimed at the sink. */
  async addViewer(): Promise<void> {
    const viewer = await addPlainViewer(this.engine, this.router, this.producers, { port: this.sinkPort });
    this.viewers.push(viewer.transport);
    this.consumers.push(...viewer.consumers);
  }

  /**
   * What the producers' encoders say about themselves (libwebrtc's outbound-rtp and candidate-pair
   * stats): a falling packet rate is either the encoder adapting to CPU or its bandwidth estimate.
   */
  async encoderStates(): Promise<EncoderState[]> {
    const out: EncoderState[] = [];
    for (const transport of this.clientTransports) {
      const report = await transport.getStats();
      let availableOutgoingBitrate: number | null = null;
      report.forEach((entry: Record<string, unknown>) => {
        if (entry.type === 'candidate-pair' && typeof entry.availableOutgoingBitrate === 'number')
          availableOutgoingBitrate = entry.availableOutgoingBitrate;
      });
      report.forEach((entry: Record<string, unknown>) => {
        if (entry.type !== 'outbound-rtp' || entry.kind !== 'video') return;
        out.push({
          frameWidth: (entry.frameWidth as number | undefined) ?? null,
          framesPerSecond: (entry.framesPerSecond as number | undefined) ?? null,
          qualityLimitationReason: (entry.qualityLimitationReason as string | undefined) ?? null,
          availableOutgoingBitrate,
        });
      });
    }
    return out;
  }

  get viewerCount(): number {
    return this.viewers.length;
  }

  close(): void {
    for (const s of this.sources) s.stop();
    for (const t of this.clientTransports) t.close();
    this.worker.close();
  }
}

/**
 * A viewer on `router`: one PlainTransport consuming every one of `producers` and sending to `sink`.
 * SRTP on by default, so the worker encrypts every packet as it would for a WebRTC peer; `srtp: false`
 * sends plain RTP that the caller can read.
 */
export async function addPlainViewer(
  engine: MediaEngine,
  router: MsRouter,
  producers: readonly Pick<MsProducer, 'id'>[],
  sink: { port: number; ip?: string; srtp?: boolean },
): Promise<{ transport: PlainTransport; consumers: MsConsumer[] }> {
  const ip = sink.ip ?? '127.0.0.1';
  const srtp = sink.srtp ?? true;
  const listen =
    engine.flavour === 'current' ? { listenInfo: { protocol: 'udp', ip } } : { listenIp: { ip } };
  const transport = await (router as PlainCapableRouter).createPlainTransport({
    ...listen,
    rtcpMux: true,
    comedia: false,
    ...(srtp && { enableSrtp: true, srtpCryptoSuite: SRTP_SUITE }),
  });
  await transport.connect({
    ip,
    port: sink.port,
    ...(srtp && {
      srtpParameters: { cryptoSuite: SRTP_SUITE, keyBase64: randomBytes(SRTP_KEY_BYTES).toString('base64') },
    }),
  });
  const consumers: MsConsumer[] = [];
  for (const producer of producers) {
    consumers.push(
      await transport.consume({
        producerId: producer.id,
        rtpCapabilities: router.rtpCapabilities,
        paused: false,
      }),
    );
  }
  return { transport, consumers };
}

interface RtpStatsEntry {
  readonly type: string;
  readonly packetCount?: number;
  readonly byteCount?: number;
}

/** Packets and bytes a producer received or a consumer sent, from mediasoup's own stats. */
export async function rtpCounters(
  endpoint: MsProducer | MsConsumer,
  direction: 'inbound-rtp' | 'outbound-rtp',
): Promise<RtpCounters> {
  const stats = (await endpoint.getStats()) as RtpStatsEntry[];
  const entries = stats.filter((s) => s.type === direction);
  return {
    packets: entries.reduce((sum, s) => sum + (s.packetCount ?? 0), 0),
    bytes: entries.reduce((sum, s) => sum + (s.byteCount ?? 0), 0),
  };
}
