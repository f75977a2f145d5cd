import type { KeySet } from '../protocol/tokens';
/**
 * What one media server process needs to know, already validated. `server.ts` builds it from the
 * environment (env.ts); everything below takes the typed values it needs.
 */
import type { LogLevel } from '../protocol/environment';
import type { WorkerLogLevel } from './engine';

export interface SignalingLimits {
  /** Sustained client → server requests per second per connection (token bucket rate). */
  readonly messagesPerSecond: number;
  /** Bucket size: a join sends a handful of requests back to back. */
  readonly messageBurst: number;
  /** Requests refused for rate in a row before the connection is closed as abusive. */
  readonly maxRateViolations: number;
  /** WebSocket ping period; a client that misses one pong is dropped at the next ping. */
  readonly pingIntervalMs: number;
  /** How long a fresh connection may stay without a successful join. */
  readonly joinTimeoutMs: number;
}

export interface PeerLimits {
  /** A client needs one send and one recv transport; a few more cover ICE/transport restarts. */
  readonly maxTransports: number;
  /** Camera, mic and screen (+ screen audio), with room to spare. */
  readonly maxProducers: number;
  /** On top of one consumer per remote producer (Peer.consume): a bound for very large rooms. */
  readonly maxConsumers: number;
}

export interface RoomLimits {
  /**
   * Peers one room holds on this server. A second session of an identity already in the room replaces
   * its first and is never refused for this; any other join beyond it is refused with `room_full`.
   */
  readonly maxPeers: number;
}

export interface MediaServerConfig {
  readonly region: string;
  readonly serverId: string;
  readonly tableName: string;
  readonly dynamoEndpoint?: string;
  /** Keys media tokens are verified with; a media server never holds the join-token keys. */
  readonly mediaTokenKeys: KeySet;
  /** Bind address of the signaling HTTP/WebSocket server (private). */
  readonly listenHost: string;
  readonly signalingPort: number;
  /** `ws://host:port` the region's LB relays signaling to. */
  readonly privateEndpoint: string;
  /** Address clients send media to (ICE candidates announce it). */
  readonly publicIp: string;
  /**
   * The instance's private address, announced as a second ICE candidate (same listen address) when it
   * differs from the public one: the region's TURN relay reaches media servers inside the VPC only
   * (lib/turn-relay.ts), so a relayed candidate pair forms with this one. Undefined locally.
   */
  readonly privateIp: string | undefined;
  /** Address mediasoup binds for media. */
  readonly rtcListenIp: string;
  readonly rtcMinPort: number;
  readonly rtcMaxPort: number;
  readonly numWorkers: number;
  /** Load units (transports + consumers) placement may fill; see load.ts. */
  readonly capacity: number;
  readonly drainTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** How often the server re-reads its rooms' assignments (cross-region races, takeovers). */
  readonly roomCheckIntervalMs: number;
  /**
   * How often the server pushes a live room's item TTL (24 h from placement) forward, per room. Well
   * below the TTL so a missed refresh or two cannot expire a live room; rare, because the room item is
   * written by several regions and every write is a chance to win a last-writer-wins race (Registrar.ts).
   */
  readonly roomRefreshIntervalMs: number;
  readonly workerLogLevel: WorkerLogLevel;
  readonly signaling: SignalingLimits;
  readonly peer: PeerLimits;
  readonly room: RoomLimits;
  /** Serve `GET /debug/stats` (object counts) on the signaling port; the LB never relays it. */
  readonly debugEndpoints: boolean;
  /** Level of the server's logger (LOG_LEVEL). */
  readonly logLevel: LogLevel;
}

export const DEFAULT_SIGNALING_LIMITS: SignalingLimits = {
  messagesPerSecond: 50,
  messageBurst: 100,
  maxRateViolations: 20,
  pingIntervalMs: 2_000,
  joinTimeoutMs: 10_000,
};

export const DEFAULT_PEER_LIMITS: PeerLimits = { maxTransports: 4, maxProducers: 8, maxConsumers: 256 };

/** A large meeting. The media server's own guard, whatever placement sent its way. */
export const DEFAULT_ROOM_LIMITS: RoomLimits = { maxPeers: 100 };

/** One hour: a room item (24 h TTL) then always has more than 23 h left while its room lives. */
export const DEFAULT_ROOM_REFRESH_INTERVAL_MS = 3_600_000;
