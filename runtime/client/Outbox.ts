/**
 * Operations the app asked for while the session had no live server (joining or reconnecting),
 * replayed in order once it has one again.
 *
 * Every operation is keyed and idempotent (`muted:video` sets a state, it does not toggle one), so a
 * newer operation with the same key replaces the queued one: the server only ever sees the latest
 * intent, and an operation that was sent just before the connection dropped can safely be sent again.
 * Operations read the session's desired state when they run, not when they were queued, because ids
 * (producers, transports) change with every server.
 */

/** Bound on distinct queued operations; keys are per kind and per control, so a real app stays far below. */
export const MAX_QUEUED_OPERATIONS = 64;

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

interface QueuedOperation {
  run: () => Promise<void>;
  readonly waiters: Waiter[];
}

export class Outbox {
  private readonly queue = new Map<string, QueuedOperation>();
  private flushing: Promise<void> | undefined;

  get size(): number {
    return this.queue.size;
  }

  /** Queues `run` under `key` (replacing an older one); resolves when a flush has run it. */
  enqueue(key: string, run: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      const existing = this.queue.get(key);
      if (existing) {
        existing.run = run;
        existing.waiters.push({ resolve, reject });
        return;
      }
      if (this.queue.size >= MAX_QUEUED_OPERATIONS) {
        reject(new Error(`more than ${MAX_QUEUED_OPERATIONS} operations queued while reconnecting`));
        return;
      }
      this.queue.set(key, { run, waiters: [{ resolve, reject }] });
    });
  }

  /**
   * Runs the queued operations in order. `isRetryable(err)` says the connection dropped again while
   * running: that operation and the rest stay queued for the next flush.
   */
  flush(isRetryable: (err: unknown) => boolean): Promise<void> {
    this.flushing ??= this.drain(isRetryable).finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  rejectAll(err: Error): void {
    for (const op of this.queue.values()) for (const w of op.waiters) w.reject(err);
    this.queue.clear();
  }

  private async drain(isRetryable: (err: unknown) => boolean): Promise<void> {
    // Bounded: each pass removes an entry or stops.
    while (this.queue.size > 0) {
      const [key, op] = this.queue.entries().next().value as [string, QueuedOperation];
      const waiters = [...op.waiters];
      try {
        await op.run();
      } catch (err) {
        if (isRetryable(err)) return;
        this.settle(key, op, waiters, err as Error);
        continue;
      }
      this.settle(key, op, waiters);
    }
  }

  /** Settles the waiters that were present when the run started; later ones wait for their own run. */
  private settle(key: string, op: QueuedOperation, waiters: Waiter[], err?: Error): void {
    op.waiters.splice(0, waiters.length);
    if (op.waiters.length === 0) this.queue.delete(key);
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }
}
