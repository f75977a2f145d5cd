/**
 * The subset of mediasoup's API this server uses, typed once so that everything above the engine works
 * the same on mediasoup 3.27 (production) and 3.8 (local runs and tests). Both versions satisfy these
 * shapes (typeConformance.ts proves it at compile time); the loader casts where it requires the module.
 *
 * RTP capabilities/parameters and DTLS parameters stay opaque (`MediasoupObject`): they travel between
 * the client and mediasoup unchanged and mediasoup validates them.
 */

export type MediasoupObject = Record<string, unknown>;
export type MediaKind = 'audio' | 'video';

/** Events both versions emit with these names and arguments (a structural view of EventEmitter). */
interface Emitter<Events extends Record<string, unknown[]>> {
  on<E extends keyof Events & string>(event: E, listener: (...args: Events[E]) => void): unknown;
}

export interface RtpCodecCapability {
  readonly kind: MediaKind;
  readonly mimeType: string;
  readonly clockRate: number;
  readonly channels?: number;
  readonly parameters?: Record<string, string | number>;
}

export interface MsWorker extends Emitter<{ died: [Error] }> {
  readonly pid: number;
  readonly closed: boolean;
  close(): void;
  getResourceUsage(): Promise<{ ru_utime: number; ru_stime: number }>;
  createRouter(options: { mediaCodecs: RtpCodecCapability[] }): Promise<MsRouter>;
}

export interface MsRouter {
  readonly id: string;
  readonly closed: boolean;
  readonly rtpCapabilities: unknown;
  close(): void;
  canConsume(args: { producerId: string; rtpCapabilities: MediasoupObject }): boolean;
  /** Options differ between versions; only the engine builds them. */
  createWebRtcTransport(options: Record<string, unknown>): Promise<MsWebRtcTransport>;
}

export type DtlsState = 'new' | 'connecting' | 'connected' | 'failed' | 'closed';

export interface MsWebRtcTransport extends Emitter<{ dtlsstatechange: [DtlsState]; routerclose: [] }> {
  readonly id: string;
  readonly closed: boolean;
  readonly iceParameters: unknown;
  readonly iceCandidates: unknown[];
  readonly dtlsParameters: unknown;
  close(): void;
  connect(args: { dtlsParameters: MediasoupObject }): Promise<void>;
  restartIce(): Promise<unknown>;
  setMaxIncomingBitrate(bitrate: number): Promise<void>;
  getStats(): Promise<unknown[]>;
  produce(args: {
    kind: MediaKind;
    rtpParameters: MediasoupObject;
    paused?: boolean;
    appData?: Record<string, unknown>;
  }): Promise<MsProducer>;
  consume(args: {
    producerId: string;
    rtpCapabilities: MediasoupObject;
    paused?: boolean;
  }): Promise<MsConsumer>;
}

/**
 * `score` carries one entry per RTP stream the producer receives. Both versions create a stream when its
 * first packet arrives and emit `score` right then, so a non-empty score means the producer has carried
 * media (load.ts counts consumers from that moment).
 */
export interface MsProducer extends Emitter<{ transportclose: []; score: [unknown[]] }> {
  readonly id: string;
  readonly kind: MediaKind;
  readonly closed: boolean;
  readonly paused: boolean;
  close(): void;
  pause(): Promise<void>;
  resume(): Promise<void>;
  getStats(): Promise<unknown[]>;
}

export interface MsConsumer extends Emitter<{
  transportclose: [];
  producerclose: [];
  producerpause: [];
  producerresume: [];
}> {
  readonly id: string;
  readonly producerId: string;
  readonly kind: MediaKind;
  readonly closed: boolean;
  readonly paused: boolean;
  readonly rtpParameters: unknown;
  close(): void;
  resume(): Promise<void>;
  getStats(): Promise<unknown[]>;
}
