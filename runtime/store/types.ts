/** Records of the single-table model (see DESIGN.md "Data model"). Times are epoch milliseconds. */

export type ServerStatus = 'active' | 'draining';
export type RegionStatus = 'active' | 'evacuated';

export interface MediaServerRecord {
  readonly id: string;
  readonly region: string;
  /** Private signaling endpoint the region's LB relays to, e.g. `ws://10.1.2.3:7000`. */
  readonly endpoint: string;
  /** Address that clients send media to. */
  readonly publicIp: string;
  /** Load units (transports + consumers) the server accepts before placement must skip it. */
  readonly capacity: number;
  readonly load: number;
  /**
   * Rooms open on the server, reported with `load` so placement can tell what a room weighs.
   * @default - absent in items of servers that predate it; placement then assumes a small room
   */
  readonly rooms?: number;
  readonly status: ServerStatus;
  readonly heartbeatAt: number;
  readonly startedAt: number;
}

export interface RoomRecord {
  readonly id: string;
  readonly serverId: string;
  readonly region: string;
  /** Bumped by every placement; a takeover is conditional on the version it read. */
  readonly version: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Operator-owned: whether a region takes traffic. Kept apart from the summary (see RegionSummary). */
export interface RegionStatusRecord {
  readonly region: string;
  readonly status: RegionStatus;
  readonly reason: string;
  readonly updatedAt: number;
}

/**
 * LB-owned: what the region's LB last reported. A separate item from the status because global tables
 * resolve conflicts per item: a summary refresh in one region must never overwrite an evacuation
 * written through another region's replica.
 */
export interface RegionSummary {
  readonly region: string;
  /** Public API base of the region, e.g. `https://eu-west-1.api.example.com`. */
  readonly apiUrl: string;
  /** The same in the backup name family, e.g. `https://eu-west-1.api-backup.example.net`; absent if none. */
  readonly backupApiUrl?: string;
  /** The same by IP address: the local stack's only (runtime/lb/regionUrls.ts); absent on AWS. */
  readonly addressApiUrl?: string;
  readonly liveServers: number;
  readonly load: number;
  readonly capacity: number;
  readonly reportedAt: number;
}

export interface RegionView {
  readonly region: string;
  readonly status: RegionStatus;
  readonly reason: string;
  readonly statusUpdatedAt: number | null;
  readonly summary: RegionSummary | null;
}

export type PlaceRoomResult =
  | { readonly outcome: 'placed'; readonly room: RoomRecord }
  /** Someone else wrote the room first; `current` is what the local replica holds now (null if deleted since). */
  | { readonly outcome: 'lost'; readonly current: RoomRecord | null };

/** One region's leg of a room (DESIGN "Cascading"): the room item for the room's first region, else a leg item. */
export interface LegRecord {
  readonly roomId: string;
  readonly region: string;
  readonly serverId: string;
  /** Bumped by every placement of this leg; a takeover is conditional on the version it read. */
  readonly version: number;
  /** The room item (`meta`) rather than a `leg#<region>` item. */
  readonly home: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A room's legs by region, as one replica sees them. */
export interface RoomLegs {
  readonly roomId: string;
  readonly legs: ReadonlyMap<string, LegRecord>;
}

export type PlaceLegResult =
  | { readonly outcome: 'placed'; readonly leg: LegRecord }
  | { readonly outcome: 'lost'; readonly current: LegRecord | null };
