/**
 * mediasoup 3.27 (production). One WebRtcServer per worker: every transport of the worker shares one UDP
 * and one TCP port, so the security group opens a small fixed range (one port per worker) and ICE
 * demultiplexes by username fragment.
 */
import { TRANSPORT_PROTOCOLS, baseWorker, type EngineWorker, type WorkerSettings } from './engineWorker';
import { PIPE_TRANSPORT_FEATURES, assertPortRange, type PortRange } from './pipeTransport';
import type { MsWorker } from './types';

interface ListenInfo {
  protocol: 'udp' | 'tcp';
  ip: string;
  announcedAddress: string;
  port?: number;
  portRange?: PortRange;
}

interface CurrentWorker extends MsWorker {
  createWebRtcServer(options: { listenInfos: ListenInfo[] }): Promise<{ readonly id: string; close(): void }>;
}

export interface CurrentModule {
  readonly version: string;
  createWorker(settings: { logLevel: string; workerBin: string }): Promise<CurrentWorker>;
}

export async function createCurrentWorker(
  mediasoup: CurrentModule,
  workerBin: string,
  settings: WorkerSettings,
): Promise<EngineWorker> {
  const worker = await mediasoup.createWorker({ logLevel: settings.logLevel, workerBin });
  // The server's port is the first of the worker's slice: stable across a worker re-creation.
  const port = settings.rtcMinPort;
  const listen = (protocol: 'udp' | 'tcp'): ListenInfo => ({
    protocol,
    ip: settings.listenIp,
    announcedAddress: settings.announcedIp,
    port,
  });
  // The private address (for the TURN relay) needs sockets of its own: the next port of the worker's slice.
  const privateAddress = settings.privateAnnouncedIp;
  if (privateAddress && settings.rtcMaxPort <= port) {
    worker.close();
    throw new Error(
      `worker ${settings.index}: announcing the private address ${privateAddress} needs two ports per worker; ` +
        'widen RTC_MIN_PORT..RTC_MAX_PORT to twice the number of workers',
    );
  }
  const listenInfos = [listen('udp'), listen('tcp')];
  if (privateAddress) {
    for (const protocol of ['udp', 'tcp'] as const) {
      listenInfos.push({ protocol, ip: settings.listenIp, announcedAddress: privateAddress, port: port + 1 });
    }
  }
  let webRtcServer;
  try {
    webRtcServer = await worker.createWebRtcServer({ listenInfos });
  } catch (err) {
    worker.close();
    throw new Error(
      `worker ${settings.index}: cannot listen on ${settings.listenIp}:${port}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return {
    ...baseWorker(settings.index, worker),
    createWebRtcTransport: (router, transport) =>
      router.createWebRtcTransport({
        webRtcServer,
        ...TRANSPORT_PROTOCOLS,
        initialAvailableOutgoingBitrate: transport.initialAvailableOutgoingBitrate,
      }),
    // Pipes bind their own port (no WebRtcServer for them): one from the pipe range, which the
    // security group opens to the other regions. `listenIp` still exists on 3.27 but is deprecated.
    createPipeTransport: async (router, pipe) => {
      assertPortRange(pipe.portRange);
      const listenInfo: ListenInfo = {
        protocol: 'udp',
        ip: settings.listenIp,
        announcedAddress: settings.announcedIp,
        portRange: { min: pipe.portRange.min, max: pipe.portRange.max },
      };
      return router.createPipeTransport({ listenInfo, ...PIPE_TRANSPORT_FEATURES });
    },
  };
}
