/**
 * A stand-in for a region's LB as the health checker sees it: a real HTTP server on the region's address
 * whose `/health` status the test sets. In manual mode every probe waits until the test answers it, so a
 * test can walk the checker through results one at a time.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export class FakeLb {
  private status = 200;
  private manual = false;
  private readonly waiting: http.ServerResponse[] = [];
  private readonly arrivals: (() => void)[] = [];
  /** Statuses answered so far, in order. */
  readonly served: number[] = [];

  static async start(address: string, port: number): Promise<FakeLb> {
    const lb = new FakeLb(address);
    await new Promise<void>((resolve, reject) => {
      lb.server.once('error', reject);
      lb.server.listen(port, address, () => resolve());
    });
    return lb;
  }

  private readonly server = http.createServer((req, res) => {
    if (req.url !== '/health') {
      res.writeHead(404).end();
      return;
    }
    if (this.manual) {
      this.waiting.push(res);
      this.arrivals.shift()?.();
      return;
    }
    this.answer(res, this.status);
  });

  private constructor(readonly address: string) {}

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Every probe gets `status` at once from now on (and any held probe gets it too). */
  respondWith(status: number): void {
    this.status = status;
    this.manual = false;
    for (const res of this.waiting.splice(0)) this.answer(res, status);
  }

  /** Probes wait until `answerNext` answers them. */
  holdProbes(): void {
    this.manual = true;
  }

  /** Waits for the next probe (or takes a held one) and answers it with `status`. */
  async answerNext(status: number, timeoutMs = 5_000): Promise<void> {
    if (this.waiting.length === 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no probe reached ${this.address} within ${timeoutMs} ms`)),
          timeoutMs,
        );
        this.arrivals.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.answer(this.waiting.shift()!, status);
  }

  async close(): Promise<void> {
    for (const res of this.waiting.splice(0)) res.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private answer(res: http.ServerResponse, status: number): void {
    this.served.push(status);
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: status < 400 }));
  }
}
