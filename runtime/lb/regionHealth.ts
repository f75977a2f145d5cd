/**
 * Whether this region can serve joins right now: what Route 53 (and the local DNS emulator) probe.
 *
 * Always fresh reads, never the fleet cache: the answer must turn within one probe of an evacuation or
 * of the last media server's heartbeat expiring. Always bounded: a replica that hangs makes the region
 * unhealthy after `deadlineMs` instead of making the health checker time out (which Route 53 would
 * also count as a failure, but only after its own, longer, timeout).
 */
import { StoreError, type Store } from '../store';
import type { Clock } from './config';

export type HealthReason = 'db_timeout' | 'db_unavailable' | 'no_live_media_servers' | 'region_evacuated';

export interface RegionHealth {
  readonly healthy: boolean;
  readonly region: string;
  readonly reasons: HealthReason[];
  /** Live, active media servers; null when the replica did not answer. */
  readonly liveServers: number | null;
  readonly regionStatus: 'active' | 'evacuated' | null;
}

class DeadlineExceeded extends Error {}

export async function checkRegionHealth(
  store: Store,
  args: { region: string; deadlineMs: number; clock: Clock; onStoreError?: (err: StoreError) => void },
): Promise<RegionHealth> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded()), args.deadlineMs);
  });
  try {
    // The race abandons the reads at the deadline; the SDK's own request timeout ends them later.
    const [servers, status] = await Promise.race([
      Promise.all([store.listServers(args.region), store.getRegionStatus(args.region)]),
      deadline,
    ]);
    const now = args.clock();
    const liveServers = servers.filter((s) => s.status === 'active' && store.isAlive(s, now)).length;
    const reasons: HealthReason[] = [];
    if (status.status === 'evacuated') reasons.push('region_evacuated');
    if (liveServers === 0) reasons.push('no_live_media_servers');
    return {
      healthy: reasons.length === 0,
      region: args.region,
      reasons,
      liveServers,
      regionStatus: status.status,
    };
  } catch (err) {
    if (err instanceof StoreError) args.onStoreError?.(err);
    else if (!(err instanceof DeadlineExceeded)) throw err;
    const reason: HealthReason = err instanceof DeadlineExceeded ? 'db_timeout' : 'db_unavailable';
    return { healthy: false, region: args.region, reasons: [reason], liveServers: null, regionStatus: null };
  } finally {
    clearTimeout(timer);
  }
}
