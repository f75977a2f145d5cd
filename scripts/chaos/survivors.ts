/**
 * `media.survivors` of a chaos report: for every pair of media clients that were both outside the failed
 * region at the injection, the longest stretch after the injection in which one of them decoded no new
 * frame from the other (either direction). With rooms cascaded across regions, that stretch is what a
 * region's death costs the peers of the other regions; the verdict wants it under SURVIVOR_GAP_LIMIT_MS.
 *
 * Frames are recorded per sender peer id as they are decoded (not polled), and a sender is known by every
 * peer id it had: a survivor that rejoined anyway is judged across its sessions, so its own gap counts.
 */

/** The verdict's bound on the survivors' longest gap (kill, blackhole, evacuate). */
export const SURVIVOR_GAP_LIMIT_MS = 500;
/** Frames older than this before the injection are dropped; only the last one before it matters. */
const KEEP_BEFORE_INJECTION_MS = 2_000;

/** Decode times of remote video frames, per sender peer id. */
export class RemoteFrames {
  private readonly byPeer = new Map<string, number[]>();
  private total = 0;

  record(peerId: string, at: number): void {
    let times = this.byPeer.get(peerId);
    if (!times) this.byPeer.set(peerId, (times = []));
    times.push(at);
    this.total++;
  }

  /** Every frame decoded, from anyone. */
  get frames(): number {
    return this.total;
  }

  /** Frames decoded from any of `peerIds`. */
  framesFrom(peerIds: Iterable<string>): number {
    let n = 0;
    for (const id of peerIds) n += this.byPeer.get(id)?.length ?? 0;
    return n;
  }

  /** Decode times from any of `peerIds`, ascending. */
  timesFrom(peerIds: Iterable<string>): number[] {
    const all: number[] = [];
    for (const id of peerIds) all.push(...(this.byPeer.get(id) ?? []));
    return all.sort((a, b) => a - b);
  }

  /**
   * When frames started to flow again after `since`: the decode time of the first frame at or after it,
   * once `confirm` frames have been decoded since (one stray frame is not media flowing); else null.
   */
  flowingSince(since: number, confirm: number): number | null {
    const after: number[] = [];
    for (const times of this.byPeer.values()) for (const t of times) if (t >= since) after.push(t);
    return after.length >= confirm ? Math.min(...after) : null;
  }

  /** Drops what no gap measurement can need any more (all but the last frame before `before`). */
  trim(before: number): void {
    for (const [id, times] of this.byPeer) {
      const keepFrom = times.findIndex((t) => t >= before - KEEP_BEFORE_INJECTION_MS);
      if (keepFrom > 0) this.byPeer.set(id, times.slice(keepFrom - 1));
    }
  }
}

/** The longest stretch of [from, to] without a time of `times` (ascending); the whole span if none. */
export function longestGap(times: readonly number[], from: number, to: number): number {
  let last = from;
  let longest = 0;
  for (const t of times) {
    if (t <= from) continue;
    if (t > to) break;
    longest = Math.max(longest, t - last);
    last = t;
  }
  return Math.max(longest, to - last);
}

/** One media client as the survivors' measurement sees it. */
export interface MediaWitness {
  readonly id: string;
  /** Region of its media server at the injection. */
  readonly serverRegionBefore: string;
  /** Every peer id its sessions had (a rejoin brings a new one). */
  readonly peerIds: readonly string[];
  readonly frames: RemoteFrames;
}

export interface SurvivorPair {
  readonly a: string;
  readonly b: string;
  /** The longer of the two directions' longest gaps. */
  readonly gapMs: number;
}

export interface SurvivorMedia {
  readonly pairs: number;
  readonly maxGapMs: number | null;
  readonly p95GapMs: number | null;
  readonly byPair: readonly SurvivorPair[];
}

export function survivorMedia(
  witnesses: readonly MediaWitness[],
  failedRegion: string,
  window: { readonly from: number; readonly to: number },
): SurvivorMedia {
  const survivors = witnesses.filter(
    (w) => w.serverRegionBefore !== '' && w.serverRegionBefore !== failedRegion,
  );
  const byPair: SurvivorPair[] = [];
  for (let i = 0; i < survivors.length; i++) {
    for (let j = i + 1; j < survivors.length; j++) {
      const a = survivors[i]!;
      const b = survivors[j]!;
      const gapMs = Math.max(
        longestGap(a.frames.timesFrom(b.peerIds), window.from, window.to),
        longestGap(b.frames.timesFrom(a.peerIds), window.from, window.to),
      );
      byPair.push({ a: a.id, b: b.id, gapMs: Math.round(gapMs) });
    }
  }
  const gaps = byPair.map((p) => p.gapMs).sort((x, y) => x - y);
  return {
    pairs: byPair.length,
    maxGapMs: gaps.length ? gaps[gaps.length - 1]! : null,
    p95GapMs: gaps.length ? gaps[Math.min(gaps.length - 1, Math.ceil(gaps.length * 0.95) - 1)]! : null,
    byPair,
  };
}
