/**
 * The load a server reports for placement, in the same units as its capacity.
 *
 * Units are WebRTC transports plus consumers whose producer has carried media: a consumer forwarding a
 * stream is what costs a media server (every forwarded packet goes out again), and a transport is the
 * fixed cost of each peer (ICE, DTLS, SRTP, and on the legacy engine a port). CPU is the other limit: a
 * server whose workers are busy is as full as its CPU share of capacity says, whatever its unit count
 * (simulcast layers and high bitrates cost more than one unit each).
 *
 * What one participant can claim is bounded, so JSON alone cannot fill a server (issue #15: one peer
 * used to reach 258 units by consuming everything, its own producers included, again and again, and
 * two such joins marked a 500-unit server full):
 *   - A peer holds at most `maxTransports` (4) transports: an honest client uses 2 (send, recv), the
 *     rest covers a transport re-created after a failure.
 *   - A peer holds one consumer per producer of another peer (Peer.consume), and a consumer counts only
 *     once its producer has received RTP (the producer's first `score` event). A consumer of a silent
 *     producer forwards nothing and costs the worker a few hundred bytes.
 *   - So a peer that sends no media claims at most `maxTransports` units, whatever it asks for. Its
 *     producers (at most `maxProducers`) cost nothing until they carry media; then every consumer of
 *     them counts, because that is real forwarded media, bounded by the send transport's incoming
 *     bitrate cap and the room's peer cap, and visible in the CPU share too.
 *   - One join token is one identity, and an identity holds one peer per room (Room.addPeer): joining
 *     again replaces the first peer instead of adding to it.
 * An honest client (one send and one recv transport, one consumer per remote producer) never meets a
 * bound; its units are exactly what it costs.
 */
import type { WorkerPool } from './WorkerPool';

export interface LoadSample {
  readonly units: number;
  /** Mean CPU share of the live workers since the previous sample, 0..1. */
  readonly cpuShare: number;
  /** What the server reports: max(units, cpuShare × capacity). */
  readonly load: number;
}

export interface LoadMeterOptions {
  /** The workers whose CPU time is sampled. */
  readonly pool: WorkerPool;
  /** The server's capacity in load units: a fully busy CPU reports this much. */
  readonly capacity: number;
}

export class LoadMeter {
  private readonly pool: WorkerPool;
  private readonly capacity: number;
  private previous = new Map<number, { cpuMs: number; at: number }>();

  constructor({ pool, capacity }: LoadMeterOptions) {
    this.pool = pool;
    this.capacity = capacity;
  }

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
