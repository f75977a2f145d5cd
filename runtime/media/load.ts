/**
 * The load a server reports for placement, in the same units as its capacity.
 *
 * Units are WebRTC transports plus consumers: a consumer is what costs a media server (every forwarded
 * stream is packets out), and a transport is the fixed cost of each peer (ICE, DTLS, SRTP). CPU is the
 * other limit: a server whose workers are busy is as full as its CPU share of capacity says, whatever
 * its unit count (simulcast layers and high bitrates cost more than one unit each).
 */
import type { WorkerPool } from './WorkerPool';

export interface LoadSample {
  readonly units: number;
  /** Mean CPU share of the live workers since the previous sample, 0..1. */
  readonly cpuShare: number;
  /** What the server reports: max(units, cpuShare × capacity). */
  readonly load: number;
}

export class LoadMeter {
  private previous = new Map<number, { cpuMs: number; at: number }>();

  constructor(
    private readonly pool: WorkerPool,
    private readonly capacity: number,
  ) {}

  async sample(units: number): Promise<LoadSample> {
    const cpuShare = await this.cpuShare();
    return { units, cpuShare, load: Math.max(units, Math.round(cpuShare * this.capacity)) };
  }

  private async cpuShare(): Promise<number> {
    const now = performance.now();
    const next = new Map<number, { cpuMs: number; at: number }>();
    let busyMs = 0;
    let wallMs = 0;
    await Promise.all(
      this.pool.alive.map(async (worker) => {
        let cpuMs: number;
        try {
          cpuMs = await worker.cpuTimeMs();
        } catch {
          return; // the worker died during the sample; the pool reports it
        }
        next.set(worker.pid, { cpuMs, at: now });
        const before = this.previous.get(worker.pid);
        if (before && now > before.at) {
          busyMs += Math.max(0, cpuMs - before.cpuMs);
          wallMs += now - before.at;
        }
      }),
    );
    this.previous = next;
    return wallMs > 0 ? Math.min(1, busyMs / wallMs) : 0;
  }
}
