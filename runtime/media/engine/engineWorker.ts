import type { PipeTransportSettings } from './pipeTransport';
import type { MsPipeTransport, MsRouter, MsWebRtcTransport, MsWorker, RtpCodecCapability } from './types';

export type WorkerLogLevel = 'debug' | 'warn' | 'error' | 'none';

/** What one worker needs to know about the network, in engine-neutral terms. */
export interface WorkerSettings {
  /** Position in the pool; a re-created worker keeps its index (and so its ports). */
  readonly index: number;
  readonly logLevel: WorkerLogLevel;
  /** Ports this worker may use, already carved out of the server's RTC range. */
  readonly rtcMinPort: number;
  readonly rtcMaxPort: number;
  /** Address the worker binds for media. */
  readonly listenIp: string;
  /** Address clients send media to (the instance's public IP). */
  readonly announcedIp: string;
  /**
   * Also announced, on the same listen address: the instance's private IP, which the region's TURN relay
   * reaches inside the VPC (it relays to nothing public). @default none
   */
  readonly privateAnnouncedIp?: string;
}

export interface TransportSettings {
  /** Bitrate the sender side starts at before BWE has numbers (bps). */
  readonly initialAvailableOutgoingBitrate: number;
}

/** A mediasoup worker plus the engine-specific way to open WebRTC transports on its routers. */
export interface EngineWorker {
  readonly index: number;
  readonly pid: number;
  readonly worker: MsWorker;
  createRouter(mediaCodecs: RtpCodecCapability[]): Promise<MsRouter>;
  createWebRtcTransport(router: MsRouter, settings: TransportSettings): Promise<MsWebRtcTransport>;
  /**
   * A PipeTransport on the worker's listen address, announcing its public address, with SRTP and RTX
   * (PIPE_TRANSPORT_FEATURES). Not connected yet: see PipeLink.
   */
  createPipeTransport(router: MsRouter, settings: PipeTransportSettings): Promise<MsPipeTransport>;
  /** User + system CPU time the worker process has used, ms. */
  cpuTimeMs(): Promise<number>;
  close(): void;
}

export function baseWorker(index: number, worker: MsWorker) {
  return {
    index,
    pid: worker.pid,
    worker,
    createRouter: (mediaCodecs: RtpCodecCapability[]) => worker.createRouter({ mediaCodecs }),
    async cpuTimeMs(): Promise<number> {
      const usage = await worker.getResourceUsage();
      return usage.ru_utime + usage.ru_stime;
    },
    close: () => worker.close(),
  };
}

/** UDP for media, TCP as the fallback for networks that block UDP; mediasoup prefers UDP candidates. */
export const TRANSPORT_PROTOCOLS = { enableUdp: true, enableTcp: true, preferUdp: true } as const;
