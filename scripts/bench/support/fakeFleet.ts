/**
 * Media servers that exist only as items in the table, heartbeated by the bench the way
 * runtime/media/Registrar.ts does it: a full put every `heartbeatIntervalMs` carrying the current load
 * and room count, and an extra beat at once when a server crosses its capacity (so placement stops
 * choosing it).
 */
import type { MediaServerRecord, Store } from '../../../runtime/store';

/** The media server's default (runtime/media/env.ts HEARTBEAT_INTERVAL_MS). */
export const MEDIA_HEARTBEAT_INTERVAL_MS = 2_000;

export interface FakeServerSpec {
  readonly id: string;
  readonly endpoint: string;
  readonly capacity: number;
}

export class FakeFleet {
  private readonly loads = new Map<string, number>();
  private readonly rooms = new Map<string, number>();
  private readonly reportedFull = new Map<string, boolean>();
  private timer?: NodeJS.Timeout;
  private beats = 0;
  private failures = 0;

  constructor(
    private readonly store: Store,
    private readonly region: string,
    readonly servers: readonly FakeServerSpec[],
    private readonly heartbeatIntervalMs = MEDIA_HEARTBEAT_INTERVAL_MS,
  ) {
    for (const s of servers) {
      this.loads.set(s.id, 0);
      this.rooms.set(s.id, 0);
    }
  }

  async start(): Promise<void> {
    await Promise.all(this.servers.map((s) => this.beat(s)));
    this.timer = setInterval(() => {
      for (const s of this.servers) void this.beat(s);
    }, this.heartbeatIntervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  load(id: string): number {
    return this.loads.get(id) ?? 0;
  }

  /** Opens a room of `units` load units; crossing capacity reports at once, as the media server does. */
  addRoom(id: string, units: number): void {
    const server = this.servers.find((s) => s.id === id);
    if (!server) throw new Error(`unknown fake server "${id}"`);
    const load = this.load(id) + units;
    this.loads.set(id, load);
    this.rooms.set(id, (this.rooms.get(id) ?? 0) + 1);
    if (load >= server.capacity !== (this.reportedFull.get(id) ?? false)) void this.beat(server);
  }

  get stats(): { heartbeats: number; failedHeartbeats: number } {
    return { heartbeats: this.beats, failedHeartbeats: this.failures };
  }

  private async beat(spec: FakeServerSpec): Promise<void> {
    const load = this.load(spec.id);
    const record: Omit<MediaServerRecord, 'heartbeatAt'> = {
      id: spec.id,
      region: this.region,
      endpoint: spec.endpoint,
      publicIp: '127.0.0.1',
      capacity: spec.capacity,
      load,
      rooms: this.rooms.get(spec.id) ?? 0,
      status: 'active',
      startedAt: 0,
    };
    try {
      await this.store.servers.heartbeat(record);
      this.reportedFull.set(spec.id, load >= spec.capacity);
      this.beats++;
    } catch {
      // The next beat retries; a server missing a few beats stays alive (DEFAULT_SERVER_LIVENESS_MS).
      this.failures++;
    }
  }
}
