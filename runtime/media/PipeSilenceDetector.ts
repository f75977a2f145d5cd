/**
 * Notices that a pipe has gone quiet: `silent` once no packet was heard for `windowMs`, `heard` when
 * packets come back after that. The pipe's owner calls `heard()` for every packet it learns of (PipeLink:
 * each RTP packet of the remote's keepalive stream) and decides what silence means; the detector only
 * reports it, once per quiet spell.
 *
 * Detection latency: between `windowMs` and `windowMs + checkIntervalMs` after the last packet.
 */
import { EventEmitter } from 'node:events';

export interface SilenceOptions {
  /**
   * Silence that marks the remote leg dead or blackholed.
   * @default 1000 - a second, as the cascading design asks; five keepalive periods
   */
  readonly windowMs?: number;
  /**
   * How often the detector looks at the clock (no I/O: a timer and a comparison).
   * @default 100
   */
  readonly checkIntervalMs?: number;
  /**
   * Silence allowed after `start()` before the first packet: the remote connects its side after a
   * control-channel round trip, which can take longer than `windowMs` across regions.
   * @default 5000
   */
  readonly setupGraceMs?: number;
}

export interface PipeSilenceDetectorOptions extends SilenceOptions {
  /** Milliseconds on a monotonic clock. @default performance.now */
  readonly now?: () => number;
}

export const DEFAULT_SILENCE_WINDOW_MS = 1_000;
export const DEFAULT_SILENCE_CHECK_INTERVAL_MS = 100;
export const DEFAULT_SILENCE_SETUP_GRACE_MS = 5_000;

type SilenceEvents = {
  /** Nothing heard for `silentMs` (>= the window, or the setup grace before the first packet). */
  silent: [silentMs: number];
  /** A packet arrived after `silent`. */
  heard: [];
};

export class PipeSilenceDetector extends EventEmitter<SilenceEvents> {
  readonly windowMs: number;
  readonly checkIntervalMs: number;
  readonly setupGraceMs: number;
  private timer: NodeJS.Timeout | undefined;
  private lastHeardAt = 0;
  private everHeardFlag = false;
  private silentFlag = false;
  private readonly now: () => number;

  constructor(options: PipeSilenceDetectorOptions = {}) {
    super();
    this.now = options.now ?? (() => performance.now());
    this.windowMs = positive('windowMs', options.windowMs ?? DEFAULT_SILENCE_WINDOW_MS);
    this.checkIntervalMs = positive(
      'checkIntervalMs',
      options.checkIntervalMs ?? DEFAULT_SILENCE_CHECK_INTERVAL_MS,
    );
    this.setupGraceMs = positive('setupGraceMs', options.setupGraceMs ?? DEFAULT_SILENCE_SETUP_GRACE_MS);
  }

  get silent(): boolean {
    return this.silentFlag;
  }

  /** Whether any packet was heard since the detector was created. */
  get everHeard(): boolean {
    return this.everHeardFlag;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Starts the clock (idempotent): silence counts from now. */
  start(): void {
    if (this.timer) return;
    this.lastHeardAt = this.now();
    this.timer = setInterval(() => this.check(), this.checkIntervalMs);
    // A detector never keeps the process alive; the pipe's transport does that while it is open.
    this.timer.unref();
  }

  heard(): void {
    this.lastHeardAt = this.now();
    this.everHeardFlag = true;
    if (this.silentFlag) {
      this.silentFlag = false;
      this.emit('heard');
    }
  }

  /** Idempotent. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    if (this.silentFlag) return;
    const quietMs = this.now() - this.lastHeardAt;
    if (quietMs < (this.everHeardFlag ? this.windowMs : this.setupGraceMs)) return;
    this.silentFlag = true;
    this.emit('silent', Math.round(quietMs));
  }
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`silence ${name} is ${value}; give a positive number of milliseconds`);
  }
  return value;
}
