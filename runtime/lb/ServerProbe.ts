/**
 * The LB's own check that a media server is still there, for when a client says it is not.
 *
 * A client's "this server failed" (its join's `exclude`) is a hint: a client may be wrong (its own
 * network broke) or lying (to move a room and kick everyone in it). Heartbeats are the LB's standing
 * evidence, but they go stale only after several seconds, and a region's failure should cost its
 * clients about a second. So when a client names a server, the LB asks the server itself, with a
 * sub-second deadline:
 *
 *   - a server of this region: `GET <private endpoint>/health`, the path the LB relays signaling over;
 *   - a server of another region: that region's LB, `GET <region api>/v1/servers/<id>/health`, which
 *     asks the server the same way (this LB has no route into another region's network). The region's
 *     URLs are tried in turn while the previous one could not even be reached (its name does not
 *     resolve: a failed primary zone); a timeout or an answer ends the probe.
 *
 * The server must answer 200 with its own id (an address reused by a replacement host is not the
 * server). Anything else within the deadline (refused, reset, timeout, 503) counts as gone. Results are
 * cached for a second per server with one probe in flight, so a herd of rejoining clients costs one
 * probe, and the probe endpoint cannot be used to flood a media server.
 */
import type { MediaServerRecord } from '../store';

/** Own region: one hop on the VPC's network, the media server answers from memory. */
export const LOCAL_PROBE_TIMEOUT_MS = 500;
/** Another region: the other LB's own probe plus an internet round trip. */
export const REMOTE_PROBE_TIMEOUT_MS = 900;
/** How long one probe's answer stands for every caller. */
export const PROBE_CACHE_MS = 1_000;

export type ProbeVerdict = 'alive' | 'gone';

export interface ProbeResult {
  readonly verdict: ProbeVerdict;
  /** What was seen, for logs and the probe endpoint's answer. */
  readonly detail: string;
}

export interface ServerProbeOptions {
  readonly region: string;
  /** The API bases of another region (from the fleet's region summaries), best first; [] if unknown. */
  readonly regionApiUrls: (region: string) => readonly string[];
  /** Wall clock for the cache. @default performance.now */
  readonly now?: () => number;
  readonly fetch?: typeof fetch;
}

export class ServerProbe {
  private readonly cache = new Map<string, { at: number; result: Promise<ProbeResult> }>();
  private readonly now: () => number;
  private readonly fetch: typeof fetch;

  constructor(private readonly opts: ServerProbeOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.fetch = opts.fetch ?? fetch;
  }

  /** Whether `server` answers now (cached for PROBE_CACHE_MS, shared by concurrent callers). */
  check(server: MediaServerRecord): Promise<ProbeResult> {
    const now = this.now();
    const cached = this.cache.get(server.id);
    if (cached && now - cached.at < PROBE_CACHE_MS) return cached.result;
    const result = server.region === this.opts.region ? this.probeLocal(server) : this.probeRemote(server);
    this.cache.set(server.id, { at: now, result });
    this.forgetOld(now);
    return result;
  }

  private async probeLocal(server: MediaServerRecord): Promise<ProbeResult> {
    const url = new URL(server.endpoint);
    url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/health`;
    return this.ask(url.toString(), LOCAL_PROBE_TIMEOUT_MS, (body) => body.serverId === server.id);
  }

  private async probeRemote(server: MediaServerRecord): Promise<ProbeResult> {
    const bases = this.opts.regionApiUrls(server.region);
    // A region that never reported a URL cannot be asked, and none of its clients can reach it either.
    if (bases.length === 0) return { verdict: 'gone', detail: `no API URL known for ${server.region}` };
    let result: ProbeResult = { verdict: 'gone', detail: 'unreachable' };
    for (const base of bases) {
      const url = `${base}/v1/servers/${encodeURIComponent(server.id)}/health`;
      result = await this.ask(
        url,
        REMOTE_PROBE_TIMEOUT_MS,
        (body) => body.serverId === server.id && body.alive === true,
      );
      if (result.detail !== 'unreachable') return result;
    }
    return result;
  }

  private async ask(
    url: string,
    timeoutMs: number,
    isThere: (body: Record<string, unknown>) => boolean,
  ): Promise<ProbeResult> {
    try {
      const res = await this.fetch(url, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
      const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      if (res.status === 200 && isThere(body)) return { verdict: 'alive', detail: `answered ${res.status}` };
      return { verdict: 'gone', detail: `answered ${res.status}` };
    } catch (err) {
      const name = (err as Error).name;
      return {
        verdict: 'gone',
        detail: name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : 'unreachable',
      };
    }
  }

  private forgetOld(now: number): void {
    if (this.cache.size < 1024) return;
    for (const [id, entry] of this.cache) if (now - entry.at >= PROBE_CACHE_MS) this.cache.delete(id);
  }
}
