/**
 * The LB's periodic self-report: its region's public API URL and load summary, written to the region's
 * summary item (never the operator-owned status item; see runtime/store/types.ts). Other regions' LBs
 * learn this region's URL from it, which is how a region joins or leaves without touching the others.
 */
import type { RegionSummary, Store } from '../store';
import { BackgroundLoop } from './BackgroundLoop';
import type { Clock } from './config';
import type { FleetCache } from './FleetCache';

export interface RegionReporterOptions {
  readonly store: Store;
  /** Where the live servers and their load are read from. */
  readonly fleet: FleetCache;
  /** The region reported on: this LB's own. */
  readonly region: string;
  /** Where clients reach this region's API; other regions' LBs offer it as an alternate. */
  readonly publicApiUrl: string;
  /** The same in the backup name family, when the deployment has one. */
  readonly backupApiUrl?: string;
  /** The same by address (the local stack only). */
  readonly addressApiUrl?: string;
  readonly clock: Clock;
  /** Called with each failed background report. */
  readonly onBackgroundError: (err: unknown) => void;
}

export class RegionReporter {
  private readonly loop: BackgroundLoop;

  constructor(private readonly opts: RegionReporterOptions) {
    this.loop = new BackgroundLoop({ run: () => this.report(), onError: opts.onBackgroundError });
  }

  async report(): Promise<RegionSummary> {
    const { store, fleet, region } = this.opts;
    const snap = await fleet.get();
    const now = this.opts.clock();
    const live = [...snap.servers.values()].filter(
      (s) => s.region === region && s.status === 'active' && store.servers.isAlive(s, now),
    );
    const summary: RegionSummary = {
      region,
      apiUrl: this.opts.publicApiUrl,
      ...(this.opts.backupApiUrl ? { backupApiUrl: this.opts.backupApiUrl } : {}),
      ...(this.opts.addressApiUrl ? { addressApiUrl: this.opts.addressApiUrl } : {}),
      liveServers: live.length,
      load: live.reduce((sum, s) => sum + s.load, 0),
      capacity: live.reduce((sum, s) => sum + s.capacity, 0),
      reportedAt: now,
    };
    await store.regions.putSummary(summary);
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
