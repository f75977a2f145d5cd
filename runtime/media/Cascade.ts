/**
 * Cascading on one media server: every room here is this region's leg of its room, and the Cascade
 * keeps a control channel and a pipe (CascadeChannel) to every other live leg of it.
 *
 * Policy:
 *   - Legs find each other through the table only (store.legs.ofRoom, every `refreshIntervalMs` per
 *     room): no configuration names another region. Two legs created at the same moment under
 *     replication lag meet once each has seen the other's item.
 *   - Of two legs, the one whose region sorts lower asks (initiator); the other answers. One channel
 *     per pair, never two crossing.
 *   - The initiator reaches the other leg's server through that region's LB (`GET
 *     /v1/rooms/:roomId/cascade`, at the URLs its LB reported in the region summary), with a cascade
 *     token (media keys, own audience) as a WebSocket subprotocol. The LB relays to the server's
 *     private endpoint like signaling: media hosts expose no control port. A region is reached by
 *     primary name, then by backup name: a channel whose socket never opened moves that region on to
 *     its next URL, so a failed primary zone does not keep legs apart. The local stack's LBs also report
 *     an address URL; where there is one it is the only URL, since the stack's names resolve only
 *     through its emulated zones, which media servers do not use.
 *   - An initiator opens a channel only to a server whose heartbeat is alive, and retries a channel
 *     that failed after `retryMs`; a leg whose item moved to another server gets a new channel.
 *   - The answering side accepts a channel only for a room it holds, from a leg the table shows.
 *   - Capacity: a pipe costs load units like a peer's transport and consumers; a server at capacity
 *     refuses new pipes (CascadeChannel sends `pipeClose`).
 */
import WebSocket from 'ws';
import { MAX_CASCADE_FRAME_BYTES } from '../protocol/pipes';
import { cascadeSubprotocols } from '../protocol/subprotocol';
import { signCascadeToken, type CascadeClaims, type KeySet } from '../protocol/tokens';
import type { LegRecord, Store } from '../store';
import { CascadeChannel, type CascadeCloseReason } from './CascadeChannel';
import type { PortRange } from './engine';
import type { Logger } from './logger';
import type { MediaServer } from './MediaServer';
import type { SilenceOptions } from './PipeSilenceDetector';
import type { Room } from './Room';

/** How long an initiator waits for the other region's LB and server to accept the channel. */
const CONNECT_TIMEOUT_MS = 3_000;

export interface CascadeOptions {
  readonly serverId: string;
  readonly region: string;
  readonly store: Store;
  /** The media keys: cascade tokens are signed and verified with them. */
  readonly keys: KeySet;
  readonly server: MediaServer;
  /** UDP ports pipes bind (3.27); 3.8 pipes take the worker's RTC ports. */
  readonly portRange: PortRange;
  /** Load units this server accepts; pipes beyond it are refused. */
  readonly capacity: number;
  readonly logger: Logger;
  /** @default 1000 */
  readonly refreshIntervalMs?: number;
  /** Wait before asking a leg again after a failed or closed channel. @default 1000 */
  readonly retryMs?: number;
  readonly silence?: SilenceOptions;
}

export interface CascadeStats {
  readonly channels: number;
  readonly connected: number;
  readonly pipeProducers: number;
  readonly pipeConsumers: number;
}

export class Cascade {
  /** `<roomId>|<region>` → the channel to that leg. */
  private readonly channels = new Map<string, CascadeChannel>();
  /** `<roomId>|<region>` → when a new channel may be asked for. */
  private readonly retryAt = new Map<string, number>();
  /** Per region: which of its URLs the next channel tries (moves on when a socket never opened). */
  private readonly urlIndex = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;
  private stopped = false;
  private readonly logger: Logger;

  constructor(private readonly opts: CascadeOptions) {
    this.logger = opts.logger.child({ component: 'cascade' });
  }

  start(): void {
    this.timer = setInterval(() => void this.refresh(), this.opts.refreshIntervalMs ?? 1_000);
    this.opts.server.on('roomClosed', (roomId) => this.closeRoom(roomId));
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const channel of [...this.channels.values()]) channel.close('closed');
    this.channels.clear();
  }

  stats(): CascadeStats {
    let connected = 0;
    let pipeProducers = 0;
    let pipeConsumers = 0;
    for (const channel of this.channels.values()) {
      if (channel.ready) connected++;
      const counts = channel.pipeLink?.counts;
      pipeProducers += counts?.pipeProducers ?? 0;
      pipeConsumers += counts?.pipeConsumers ?? 0;
    }
    return { channels: this.channels.size, connected, pipeProducers, pipeConsumers };
  }

  /** Whether this server may take another pipe: its load (pipes included) is below capacity. */
  hasCapacity(): boolean {
    return this.opts.server.loadUnits < this.opts.capacity;
  }

  /**
   * The answering side of a channel: `socket` was opened (through this region's LB) with a verified
   * cascade token for a room of this server. Refused (closed) when the room is not here or the asking
   * leg is a region that should not ask (it sorts higher: this side asks it).
   */
  accept(claims: CascadeClaims, socket: WebSocket): void {
    const room = this.opts.server.rooms.get(claims.room);
    const refuse = (code: number, reason: string) => {
      this.logger.info(
        { room: claims.room, from: claims.sub, fromRegion: claims.region, reason },
        'cascade channel refused',
      );
      socket.close(code, reason);
    };
    if (this.stopped || !room || room.closed) return refuse(4404, 'room not on this server');
    if (claims.region === this.opts.region) return refuse(4400, 'a leg does not pipe to its own region');
    if (!(claims.region < this.opts.region))
      return refuse(4409, 'the lower region asks; this leg asks yours');
    this.track(
      new CascadeChannel({
        room,
        role: 'responder',
        remoteRegion: claims.region,
        remoteServerId: claims.sub,
        socket,
        portRange: this.opts.portRange,
        hasCapacity: () => this.hasCapacity(),
        logger: this.logger,
        ...(this.opts.silence && { silence: this.opts.silence }),
      }),
    );
  }

  /** One pass over the rooms here (exposed for tests that cannot wait). */
  async refresh(): Promise<void> {
    if (this.refreshing || this.stopped) return;
    this.refreshing = true;
    try {
      const rooms = [...this.opts.server.rooms.values()].filter((r) => !r.closed);
      if (rooms.length === 0) return;
      let apiUrls: Map<string, string[]> | undefined;
      const urls = async () => (apiUrls ??= await this.regionApiUrls());
      await Promise.all(rooms.map((room) => this.refreshRoom(room, urls)));
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'cannot refresh the legs of the rooms');
    } finally {
      this.refreshing = false;
    }
  }

  private async refreshRoom(room: Room, urls: () => Promise<Map<string, string[]>>): Promise<void> {
    const { legs } = await this.opts.store.legs.ofRoom(room.id);
    if (room.closed || this.stopped) return;
    for (const [region, leg] of legs) {
      if (region === this.opts.region) continue;
      const key = channelKey(room.id, region);
      const channel = this.channels.get(key);
      if (channel && channel.remoteServerId !== leg.serverId) {
        // The leg moved to another server of its region (a takeover): pipe to the new one.
        channel.close('closed');
      }
      if (this.opts.region < region && !this.channels.has(key)) await this.ask(room, leg, urls);
    }
    // Legs that left the table (released): their channels go. A missing item may not have replicated
    // yet, so a connected channel is not dropped on that alone: it ends with its socket or heartbeats.
    for (const channel of [...this.channels.values()]) {
      if (channel.room === room && !legs.has(channel.remoteRegion) && !channel.ready) channel.close('closed');
    }
  }

  private async ask(room: Room, leg: LegRecord, urls: () => Promise<Map<string, string[]>>): Promise<void> {
    const key = channelKey(room.id, leg.region);
    if ((this.retryAt.get(key) ?? 0) > Date.now()) return;
    const server = await this.opts.store.servers.get(leg.serverId);
    if (!server || !this.opts.store.servers.isAlive(server)) return;
    const candidates = (await urls()).get(leg.region) ?? [];
    if (candidates.length === 0) return;
    const urlIndex = (this.urlIndex.get(leg.region) ?? 0) % candidates.length;
    const apiUrl = candidates[urlIndex]!;
    if (this.channels.has(key) || room.closed || this.stopped) return;
    const token = await signCascadeToken(this.opts.keys, {
      fromServer: this.opts.serverId,
      fromRegion: this.opts.region,
      room: room.id,
      server: leg.serverId,
    });
    const socket = new WebSocket(cascadeUrl(apiUrl, room.id), cascadeSubprotocols(token), {
      handshakeTimeout: CONNECT_TIMEOUT_MS,
      maxPayload: MAX_CASCADE_FRAME_BYTES,
      perMessageDeflate: false,
    });
    this.logger.debug(
      { room: room.id, leg: leg.region, legServer: leg.serverId, apiUrl },
      'asking a leg for a pipe',
    );
    let opened = false;
    socket.once('open', () => (opened = true));
    const channel = new CascadeChannel({
      room,
      role: 'initiator',
      remoteRegion: leg.region,
      remoteServerId: leg.serverId,
      socket,
      portRange: this.opts.portRange,
      hasCapacity: () => this.hasCapacity(),
      logger: this.logger,
      ...(this.opts.silence && { silence: this.opts.silence }),
    });
    // Unreachable at this URL (a name that does not resolve, an LB that does not answer): next time,
    // the region's next URL.
    channel.once('close', () => {
      if (!opened) this.urlIndex.set(leg.region, urlIndex + 1);
    });
    this.track(channel);
  }

  private track(channel: CascadeChannel): void {
    const key = channelKey(channel.room.id, channel.remoteRegion);
    this.channels.get(key)?.close('closed');
    this.channels.set(key, channel);
    channel.once('close', (reason: CascadeCloseReason) => {
      if (this.channels.get(key) === channel) this.channels.delete(key);
      if (reason !== 'closed') this.retryAt.set(key, Date.now() + (this.opts.retryMs ?? 1_000));
    });
  }

  private closeRoom(roomId: string): void {
    for (const channel of [...this.channels.values()])
      if (channel.room.id === roomId) channel.close('closed');
    for (const key of [...this.retryAt.keys()]) if (key.startsWith(`${roomId}|`)) this.retryAt.delete(key);
  }

  /** Every active region's API URLs as its LB reported them: primary then backup, or its address (local). */
  private async regionApiUrls(): Promise<Map<string, string[]>> {
    const views = await this.opts.store.regions.list();
    const urls = new Map<string, string[]>();
    for (const view of views) {
      const s = view.summary;
      if (!s?.apiUrl || view.status !== 'active') continue;
      urls.set(
        view.region,
        s.addressApiUrl
          ? [s.addressApiUrl]
          : [s.apiUrl, s.backupApiUrl].filter((u): u is string => typeof u === 'string'),
      );
    }
    return urls;
  }
}

function channelKey(roomId: string, region: string): string {
  return `${roomId}|${region}`;
}

/** `wss://<region api>/v1/rooms/<room>/cascade` (ws:// for a plain-http local stack). */
export function cascadeUrl(apiUrl: string, roomId: string): string {
  const url = new URL(apiUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/rooms/${encodeURIComponent(roomId)}/cascade`;
  url.search = '';
  return url.toString();
}
