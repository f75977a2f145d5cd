/**
 * A task the LB repeats in the background (fleet refresh, region summary). A chain of timeouts, not
 * an interval: each run starts `intervalMs` after the previous one ended, so a slow replica never
 * stacks runs. A failed run is reported and retried at the next tick; timers never hold the process.
 */
export interface BackgroundLoopOptions {
  /** One run of the task. */
  readonly run: () => Promise<unknown>;
  /** Called with each failed run; the next tick runs again. */
  readonly onError: (err: unknown) => void;
}

export class BackgroundLoop {
  private readonly run: () => Promise<unknown>;
  private readonly onError: (err: unknown) => void;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor({ run, onError }: BackgroundLoopOptions) {
    this.run = run;
    this.onError = onError;
  }

  /** Runs now and then every `intervalMs`; a no-op when `intervalMs` is 0 or the loop already runs. */
  start(intervalMs: number): void {
    if (intervalMs <= 0 || this.timer || this.stopped) return;
    const tick = () => {
      this.run()
        .catch(this.onError)
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
