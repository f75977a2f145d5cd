/**
 * mediasoup 3.8 (npm alias `mediasoup-legacy`): the worker built from the package's bundled sources on
 * machines that cannot fetch the current prebuilt worker. Local runs and tests only (it bundles an
 * end-of-life OpenSSL). No WebRtcServer: each transport binds its own port from the worker's range.
 */
import { TRANSPORT_PROTOCOLS, baseWorker, type EngineWorker, type WorkerSettings } from './engineWorker';
import { PIPE_TRANSPORT_FEATURES, assertPortRange } from './pipeTransport';
import type { MsWorker } from './types';

export interface LegacyModule {
  readonly version: string;
  createWorker(settings: {
    logLevel: string;
    rtcMinPort: number;
    rtcMaxPort: number;
    appData?: Record<string, unknown>;
  }): Promise<MsWorker>;
}

export async function createLegacyWorker(
  mediasoup: LegacyModule,
  settings: WorkerSettings,
): Promise<EngineWorker> {
  const worker = await mediasoup.createWorker({
    logLevel: settings.logLevel,
    rtcMinPort: settings.rtcMinPort,
    rtcMaxPort: settings.rtcMaxPort,
  });
  return {
    ...baseWorker(settings.index, worker),
    createWebRtcTransport: (router, transport) =>
      router.createWebRtcTransport({
        // A second listen entry (its own port) announces the private address for the TURN relay.
        listenIps: [
          { ip: settings.listenIp, announcedIp: settings.announcedIp },
          ...(settings.privateAnnouncedIp
            ? [{ ip: settings.listenIp, announcedIp: settings.privateAnnouncedIp }]
            : []),
        ],
        ...TRANSPORT_PROTOCOLS,
        initialAvailableOutgoingBitrate: transport.initialAvailableOutgoingBitrate,
      }),
    // 3.8 binds a pipe like every other transport: a free port of the worker's RTC range. A fixed
    // `port` outside that range would work but makes the worker log an error when it unbinds it, and
    // the local stack opens the RTC range anyway; so the pipe range is checked, not applied.
    createPipeTransport: async (router, pipe) => {
      assertPortRange(pipe.portRange);
      return router.createPipeTransport({
        listenIp: { ip: settings.listenIp, announcedIp: settings.announcedIp },
        ...PIPE_TRANSPORT_FEATURES,
      });
    },
  };
}
