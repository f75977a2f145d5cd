/**
 * Reads the media server's environment (its contract: runtime/protocol/mediaEnvironment.ts) into a
 * MediaServerConfig with the server's own defaults. Errors name the variable, its value and what to set
 * instead (EnvironmentError, as the LB's).
 */
import * as os from 'node:os';
import { EnvironmentError } from '../protocol/environment';
import { readMediaEnvironment } from '../protocol/mediaEnvironment';
import {
  DEFAULT_PEER_LIMITS,
  DEFAULT_ROOM_LIMITS,
  DEFAULT_ROOM_REFRESH_INTERVAL_MS,
  DEFAULT_SIGNALING_LIMITS,
  type MediaServerConfig,
} from './config';

/** The media server's config from its environment (runtime/protocol/mediaEnvironment.ts) and its defaults. */
export function readMediaServerConfig(env: NodeJS.ProcessEnv = process.env): MediaServerConfig {
  const e = readMediaEnvironment(env);
  const numWorkers = e.numWorkers ?? os.availableParallelism();
  const ports = e.rtcMaxPort - e.rtcMinPort + 1;
  if (ports < numWorkers) {
    throw new EnvironmentError('media server', [
      `RTC_MIN_PORT..RTC_MAX_PORT (${e.rtcMinPort}-${e.rtcMaxPort}) holds ${ports} ports for ${numWorkers} workers; ` +
        'widen the range or lower NUM_WORKERS',
    ]);
  }
  return {
    region: e.region,
    serverId: e.serverId,
    tableName: e.tableName,
    dynamoEndpoint: e.dynamoEndpoint,
    mediaTokenKeys: e.mediaTokenKeys,
    listenHost: e.listenHost,
    signalingPort: e.signalingPort,
    privateEndpoint: e.privateEndpoint,
    publicIp: e.publicIp,
    privateIp: privateAddressOf(e.privateEndpoint, e.publicIp),
    // A loopback public address is a local stack: bind it, so regions sharing a port range do not collide.
    // Elsewhere the public address is NATed onto the instance and not bindable: bind every interface.
    rtcListenIp: e.rtcListenIp ?? (e.publicIp.startsWith('127.') ? e.publicIp : '0.0.0.0'),
    rtcMinPort: e.rtcMinPort,
    rtcMaxPort: e.rtcMaxPort,
    numWorkers,
    capacity: e.capacity,
    drainTimeoutMs: e.drainTimeoutMs,
    heartbeatIntervalMs: e.heartbeatIntervalMs,
    roomCheckIntervalMs: e.roomCheckIntervalMs,
    roomRefreshIntervalMs: e.roomRefreshIntervalMs ?? DEFAULT_ROOM_REFRESH_INTERVAL_MS,
    workerLogLevel: e.workerLogLevel,
    signaling: {
      ...DEFAULT_SIGNALING_LIMITS,
      pingIntervalMs: e.pingIntervalMs ?? DEFAULT_SIGNALING_LIMITS.pingIntervalMs,
      joinTimeoutMs: e.joinTimeoutMs ?? DEFAULT_SIGNALING_LIMITS.joinTimeoutMs,
    },
    peer: DEFAULT_PEER_LIMITS,
    room: { maxPeers: e.maxRoomPeers ?? DEFAULT_ROOM_LIMITS.maxPeers },
    debugEndpoints: e.debugEndpoints,
    logLevel: e.logLevel,
  };
}

/**
 * The private address in PRIVATE_ENDPOINT (the host script writes the instance's private IPv4 there),
 * when it is an address other than the public one: what the TURN relay can reach.
 */
function privateAddressOf(privateEndpoint: string, publicIp: string): string | undefined {
  const host = new URL(privateEndpoint).hostname;
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) && host !== publicIp ? host : undefined;
}
