/**
 * Runs async sections one after another. A region's replica takes it around every write (a client's
 * write plus its read-back, or a replicated apply), so a replicated older value can never land between a
 * local write and the version recorded for it.
 */
export class SerialLock {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(section: () => Promise<T>): Promise<T> {
    const result = this.tail.then(section);
    // The next section waits for this one to settle, whether it failed or not.
    this.tail = result.catch(() => undefined);
    return result;
  }
}
