/**
 * Whether the far end of one WebSocket is still there and still reading, for every side that holds a
 * signaling socket (the LB's relay, both legs; the media server's session). One policy, one place:
 *
 *   - Alive: a ping every `pingIntervalMs`; a socket that has not answered by the next ping is dead,
 *     reported once through `onDead`. A socket that is still connecting is neither pinged nor judged;
 *     one that is closing is not pinged but still judged, so a peer that ignores our close frame is cut
 *     off within two periods rather than at the ws library's 30 s close timeout.
 *   - Reading: `send` refuses a frame while the socket holds more than `maxBufferedBytes` unsent, and
 *     reports it through `onSlowReader`: a peer that does not read its socket must not make us buffer
 *     what we send it without end.
 *
 * It only notices; the owner decides what dead or slow costs (a close code, a terminate, a metric).
 * Its timer never holds the process open. It stops by itself when the socket closes; `stop()` is
 * idempotent. Imports nothing of ours, so every side may use it.
 */
import type { RawData, WebSocket } from 'ws';

export interface SocketHealthOptions {
  /** Ping period; a socket that misses one pong is dead at the next ping. */
  readonly pingIntervalMs: number;
  /** The socket missed a pong. Called once; the owner closes or terminates the socket. */
  readonly onDead: () => void;
  /**
   * Unsent bytes the socket may hold before `send` refuses frames.
   * @default - no bound: `send` refuses only a socket that is not open
   */
  readonly maxBufferedBytes?: number;
  /**
   * `send` refused a frame over `maxBufferedBytes`; called with the bytes the socket held, for every
   * refused frame. The owner usually drops the connection at the first.
   * @default - nothing is reported
   */
  readonly onSlowReader?: (bufferedAmount: number) => void;
}

export class SocketHealth {
  private readonly timer: NodeJS.Timeout;
  private readonly maxBufferedBytes: number;
  /** False from a ping until its pong. */
  private answered = true;
  private stopped = false;
  private readonly onPong = () => {
    this.answered = true;
  };
  private readonly onClose = () => this.stop();

  constructor(
    private readonly socket: WebSocket,
    private readonly opts: SocketHealthOptions,
  ) {
    if (!Number.isFinite(opts.pingIntervalMs) || opts.pingIntervalMs <= 0) {
      throw new Error(`pingIntervalMs must be a positive number of milliseconds; got ${opts.pingIntervalMs}`);
    }
    const bound = opts.maxBufferedBytes ?? Infinity;
    if (Number.isNaN(bound) || bound < 0) {
      throw new Error(`maxBufferedBytes must be 0 or more; got ${opts.maxBufferedBytes}`);
    }
    this.maxBufferedBytes = bound;
    socket.on('pong', this.onPong);
    socket.once('close', this.onClose);
    this.timer = setInterval(() => this.check(), opts.pingIntervalMs).unref();
  }

  /**
   * Sends one frame. False, and nothing sent, when the socket is not open or holds more than
   * `maxBufferedBytes` unsent (then `onSlowReader` is told).
   */
  send(data: string | RawData, options: { binary?: boolean } = {}): boolean {
    if (this.socket.readyState !== this.socket.OPEN) return false;
    const buffered = this.socket.bufferedAmount;
    if (buffered > this.maxBufferedBytes) {
      this.opts.onSlowReader?.(buffered);
      return false;
    }
    this.socket.send(data, options);
    return true;
  }

  /** Stops pinging and judging. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.socket.off('pong', this.onPong);
    this.socket.off('close', this.onClose);
  }

  private check(): void {
    // The handshake has its own deadline (the owner's connect timeout).
    if (this.socket.readyState === this.socket.CONNECTING) return;
    if (!this.answered) {
      this.stop();
      this.opts.onDead();
      return;
    }
    this.answered = false;
    if (this.socket.readyState === this.socket.OPEN) this.socket.ping();
  }
}
