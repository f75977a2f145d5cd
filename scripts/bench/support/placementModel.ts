/**
 * The simulated side of the placement bench: how big rooms are and how a finished placement is scored.
 * Pure functions, so the figures in BENCHMARKS.md can be re-derived and the helpers tested.
 */

/** Room sizes in peers, drawn uniformly: small meetings dominate, a few larger rooms. */
export const ROOM_SIZES = [2, 2, 3, 3, 4, 4, 5, 6, 8] as const;

/** A deterministic PRNG (mulberry32), so every run places the same sequence of rooms. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Load units of a room of `peers` peers in the media server's units (runtime/media/LoadMeter.ts: transports
 * plus consumers): each peer has a send and a receive transport and consumes the audio and video of
 * every other peer, so 2p + 2p(p - 1) = 2p².
 */
export function roomLoadUnits(peers: number): number {
  return 2 * peers * peers;
}

export interface BalanceStats {
  readonly servers: number;
  readonly totalLoad: number;
  readonly meanLoad: number;
  readonly maxLoad: number;
  readonly minLoad: number;
  /** max / mean: 1 is perfectly even; the target is at most 1.25. */
  readonly maxOverMean: number;
  /** Servers whose load ended above their capacity. */
  readonly overCapacity: number;
}

export function balanceOf(loads: readonly number[], capacity: number): BalanceStats {
  if (loads.length === 0) throw new Error('balanceOf needs at least one server');
  const totalLoad = loads.reduce((s, l) => s + l, 0);
  const meanLoad = totalLoad / loads.length;
  const maxLoad = Math.max(...loads);
  return {
    servers: loads.length,
    totalLoad,
    meanLoad: Math.round(meanLoad * 10) / 10,
    maxLoad,
    minLoad: Math.min(...loads),
    maxOverMean: meanLoad > 0 ? Math.round((maxLoad / meanLoad) * 1000) / 1000 : 1,
    overCapacity: loads.filter((l) => l > capacity).length,
  };
}

/** Whether some server could still take a room of `units` (what a refusal is judged against). */
export function capacityExists(loads: readonly number[], capacity: number, units: number): boolean {
  return loads.some((l) => l + units <= capacity);
}
