/**
 * Whether this region can serve joins right now: what Route 53 (and the local DNS emulator) probe.
 *
 * Read from the fleet cache, at most `maxAgeMs` old (about a second): `/health` and `/v1/regions` share
 * one view, refreshed at most once per period however many probes arrive, so a flood of unauthenticated
 * probes cannot throttle the table and flip the region's health. A second is far inside one Route 53
 * probe interval, so the answer still turns on the first probe after an evacuation or the last heartbeat.
 * Always bounded: a replica that hangs makes the region unhealthy after `deadlineMs` instead of making
 * the health checker time out (which Route 53 would also count as a failure, but only after its own,
 * longer, timeout).
 */
import { StoreError } from '../store';
import type { MediaServerRecord } from '../store';
import type { Clock } from './config';
import type { FleetCache } from './FleetCache';

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
  fleet: FleetCache,
  args: {
    region: string;
    deadlineMs: number;
    maxAgeMs: number;
    clock: Clock;
    isAlive: (server: MediaServerRecord, now: number) => boolean;
    onStoreError?: (err: StoreError) => void;
  },
): Promise<RegionHealth> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded()), args.deadlineMs);
  });
  try {
    // The race abandons the refresh at the deadline; the SDK's own request timeout ends it later.
    const snap = await Promise.race([fleet.get(args.maxAgeMs), deadline]);
    const now = args.clock();
    let liveServers = 0;
    for (const s of snap.servers.values()) {
      if (s.region === args.region && s.status === 'active' && args.isAlive(s, now)) liveServers++;
    }
    const status = snap.regions.get(args.region)?.status ?? 'active';
    const reasons: HealthReason[] = [];
    if (status === 'evacuated') reasons.push('region_evacuated');
    if (liveServers === 0) reasons.push('no_live_media_servers');
    return { healthy: reasons.length === 0, region: args.region, reasons, liveServers, regionStatus: status };
  } catch (err) {
    if (err instanceof StoreError) args.onStoreError?.(err);
    else if (!(err instanceof DeadlineExceeded)) throw err;
    const reason: HealthReason = err instanceof DeadlineExceeded ? 'db_timeout' : 'db_unavailable';
    return { healthy: false, region: args.region, reasons: [reason], liveServers: null, regionStatus: null };
  } finally {
    clearTimeout(timer);
  }
}
