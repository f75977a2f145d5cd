/**
 * The LB's periodic self-report: its region's public API URL and load summary, written to the region's
 * summary item (never the operator-owned status item; see runtime/store/types.ts). Other regions' LBs
 * learn this region's URL from it, which is how a region joins or leaves without touching the others.
 */
import type { RegionSummary, Store } from '../store';
import { BackgroundLoop } from './BackgroundLoop';
import type { Clock } from './config';
import type { FleetCache } from './FleetCache';

export class RegionReporter {
  private readonly loop: BackgroundLoop;

  constructor(
    private readonly store: Store,
    private readonly fleet: FleetCache,
    private readonly opts: {
      readonly region: string;
      readonly publicApiUrl: string;
      readonly clock: Clock;
      readonly onBackgroundError: (err: unknown) => void;
    },
  ) {
    this.loop = new BackgroundLoop(() => this.report(), opts.onBackgroundError);
  }

  async report(): Promise<RegionSummary> {
    const snap = await this.fleet.get();
    const now = this.opts.clock();
    const live = [...snap.servers.values()].filter(
      (s) => s.region === this.opts.region && s.status === 'active' && this.store.servers.isAlive(s, now),
    );
    const summary: RegionSummary = {
      region: this.opts.region,
      apiUrl: this.opts.publicApiUrl,
      liveServers: live.length,
      load: live.reduce((sum, s) => sum + s.load, 0),
      capacity: live.reduce((sum, s) => sum + s.capacity, 0),
      reportedAt: now,
    };
    await this.store.regions.putSummary(summary);
    return summary;
  }

  /** Reports now and every `intervalMs` (no-op when 0). A failed report is retried at the next tick. */
  start(intervalMs: number): void {
    this.loop.start(intervalMs);
  }

  stop(): void {
    this.loop.stop();
  }
}
