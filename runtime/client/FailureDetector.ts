/**
 * Notices, within about a second, that the media server of a live connection stopped answering, from
 * every signal the client has, before any hard timeout fires:
 *
 * - Inbound media: the bytes received on all of the server's transports (RTP, RTCP and STUN answers,
 *   read from `getStats()` transport entries, which browsers and libwebrtc in Node both report). A
 *   server sends something every few hundred milliseconds while the room talks, and keeps RTCP (sender
 *   and receiver reports, transport feedback) and ICE answers flowing in a muted room, so a stall of
 *   the sum means the whole server went quiet. One remote peer going quiet does not stall the sum:
 *   that is the peer's problem, not the server's.
 * - Signaling: the app-level ping. A ping unanswered for `pingMissMs` is a miss (the channel's own
 *   `pongTimeoutMs` later declares the connection lost outright).
 * - ICE `disconnected` on a transport (libwebrtc's own, slower, verdict on the media path).
 * - Socket close is not judged here: the connection is simply lost (Connection.ts).
 *
 * Policy: the server is suspected when its media stalled **and** a ping was missed (a muted room can
 * go a second or two without an inbound byte, but its pings are answered; a slow signaling path alone
 * is not a dead server while media flows), or when ICE says disconnected. Without media (never set
 * up, or nothing ever received) a missed ping alone decides. The moment media stalls a ping is sent at
 * once, so the signaling evidence arrives `pingMissMs` later instead of waiting for the next period.
 * A suspicion is reported once with the signal that went first, and cleared once media flows and
 * pings are answered again; the owner decides what a suspicion costs (Session.ts: a hedged switch).
 *
 * Time comes from an injectable clock so a test can run a real call with real stats while the
 * detector's time runs faster than the wall clock (every real gap then looks longer: a stricter test).
 */
import { TypedEmitter } from './TypedEmitter';
import { type Timer, nowMs, unrefTimer } from './timers';

/** Which signal first pointed at the server. */
export type DetectionSignal = 'media_stall' | 'ping_missed' | 'ice_disconnected';

export interface DetectionConfig {
  /** How often transports' stats are read. */
  readonly statsIntervalMs: number;
  /** No inbound byte on any transport for this long counts as a media stall. */
  readonly mediaStallMs: number;
  /** A ping unanswered for this long counts as missed. */
  readonly pingMissMs: number;
}

/** What the detector reads from one server's media: undefined while there is none. */
export interface InboundSample {
  /** Bytes received on every transport of the server, RTP, RTCP and STUN alike. */
  readonly bytesReceived: number;
}

export interface SuspectedEvent {
  readonly signal: DetectionSignal;
  /** Everything that pointed at the server when it was suspected, e.g. `media stalled 740 ms`. */
  readonly evidence: readonly string[];
  /** Detector clock time of the first signal of this episode. */
  readonly since: number;
}

export interface FailureDetectorEvents {
  suspected: SuspectedEvent;
  /** Media flows and pings are answered again after a suspicion. */
  cleared: { afterMs: number };
}

export interface FailureDetectorOptions extends DetectionConfig {
  /** Reads the inbound counters of the server's transports; undefined when it has no media. */
  readonly sample: () => Promise<InboundSample | undefined>;
  /** Sends a ping now unless one is out (SignalingChannel.pingNow). */
  readonly pingNow: () => void;
  /** @default performance.now */
  readonly clock?: () => number;
}

export class FailureDetector extends TypedEmitter<FailureDetectorEvents> {
  private readonly clock: () => number;
  private timer: Timer | undefined;
  private sampling = false;
  private stopped = false;

  /** Total inbound bytes last seen, and when they last grew. */
  private lastBytes = -1;
  private mediaSeen = false;
  private lastMediaAt: number;
  /** When the outstanding ping left; undefined when none is out. */
  private pingOutSince: number | undefined;
  private iceDisconnectedSince: number | undefined;
  /** The current episode: when its first signal went off, and which. */
  private stallSince: number | undefined;
  private missSince: number | undefined;
  private suspectedAt: number | undefined;

  constructor(private readonly options: FailureDetectorOptions) {
    super();
    for (const key of ['statsIntervalMs', 'mediaStallMs', 'pingMissMs'] as const) {
      if (!Number.isFinite(options[key]) || options[key] <= 0) {
        throw new Error(`${key} must be a positive number of milliseconds; got ${options[key]}`);
      }
    }
    this.clock = options.clock ?? nowMs;
    this.lastMediaAt = this.clock();
  }

  /** Whether the server is suspected right now. */
  get suspected(): boolean {
    return this.suspectedAt !== undefined;
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.lastMediaAt = this.clock();
    this.timer = unrefTimer(setInterval(() => void this.tick(), this.options.statsIntervalMs));
  }

  /** Idempotent; nothing is reported afterwards. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  pingSent(): void {
    this.pingOutSince ??= this.clock();
  }

  pongReceived(): void {
    this.pingOutSince = undefined;
    this.missSince = undefined;
    this.judge();
  }

  iceState(disconnected: boolean): void {
    if (disconnected) this.iceDisconnectedSince ??= this.clock();
    else this.iceDisconnectedSince = undefined;
    this.judge();
  }

  /** One stats read and a verdict; exposed so tests can step it. */
  async tick(): Promise<void> {
    if (this.sampling || this.stopped) return;
    this.sampling = true;
    try {
      const sample = await this.options.sample().catch(() => undefined);
      if (this.stopped) return;
      if (sample) {
        if (sample.bytesReceived > this.lastBytes) {
          if (this.lastBytes >= 0 || sample.bytesReceived > 0) this.lastMediaAt = this.clock();
          if (sample.bytesReceived > 0) this.mediaSeen = true;
          this.lastBytes = sample.bytesReceived;
        }
      }
      this.judge();
    } finally {
      this.sampling = false;
    }
  }

  private judge(): void {
    if (this.stopped) return;
    const now = this.clock();
    const { mediaStallMs, pingMissMs } = this.options;
    const stalled = this.mediaSeen && now - this.lastMediaAt >= mediaStallMs;
    if (stalled && this.stallSince === undefined) {
      this.stallSince = this.lastMediaAt + mediaStallMs;
      // Ask the signaling path now rather than at its next period.
      this.options.pingNow();
    }
    if (!stalled) this.stallSince = undefined;
    const missed = this.pingOutSince !== undefined && now - this.pingOutSince >= pingMissMs;
    if (missed) this.missSince ??= this.pingOutSince! + pingMissMs;
    const ice = this.iceDisconnectedSince !== undefined;

    const suspect = ice || (missed && (stalled || !this.mediaSeen));
    if (suspect && this.suspectedAt === undefined) {
      const firsts: Array<[DetectionSignal, number]> = [];
      if (this.stallSince !== undefined) firsts.push(['media_stall', this.stallSince]);
      if (missed) firsts.push(['ping_missed', this.missSince!]);
      if (ice) firsts.push(['ice_disconnected', this.iceDisconnectedSince!]);
      firsts.sort((a, b) => a[1] - b[1]);
      const [signal, since] = firsts[0]!;
      this.suspectedAt = now;
      const evidence: string[] = [];
      if (this.mediaSeen) evidence.push(`no inbound media for ${Math.round(now - this.lastMediaAt)} ms`);
      if (this.pingOutSince !== undefined)
        evidence.push(`ping unanswered for ${Math.round(now - this.pingOutSince)} ms`);
      if (ice) evidence.push(`ICE disconnected for ${Math.round(now - this.iceDisconnectedSince!)} ms`);
      this.emit('suspected', { signal, evidence, since });
      return;
    }
    if (!suspect && this.suspectedAt !== undefined && !stalled && this.pingOutSince === undefined) {
      const afterMs = Math.round(now - this.suspectedAt);
      this.suspectedAt = undefined;
      this.emit('cleared', { afterMs });
    }
  }
}

/**
 * Sums the inbound bytes of every `transport` entry of the given stats reports (one per transport).
 * Falls back to the selected candidate pairs for implementations without transport entries.
 */
export function inboundBytes(reports: readonly RTCStatsReport[]): number {
  let total = 0;
  for (const report of reports) {
    let transports = 0;
    let pairs = 0;
    report.forEach((entry: { type: string; bytesReceived?: number; nominated?: boolean; state?: string }) => {
      if (entry.type === 'transport') transports += entry.bytesReceived ?? 0;
      if (entry.type === 'candidate-pair' && entry.nominated) pairs += entry.bytesReceived ?? 0;
    });
    total += transports > 0 ? transports : pairs;
  }
  return total;
}
