/**
 * When the local stack counts as up. Both views must agree: each LB answers /health 200 (its fleet
 * registered, its replica up) and the DNS emulator has counted enough good probes to route to it. The
 * DNS view trails the LB's by the health checks' threshold, so an LB that answers is not yet a region
 * clients resolving `api.<domain>` are sent to.
 */
import type { DnsEmulator } from './dnsEmulator';
import type { LocalRegion } from './layout';

const POLL_INTERVAL_MS = 250;
const PROBE_TIMEOUT_MS = 1_000;

/** Resolves once every region is healthy in both views; throws naming the laggards after `timeoutMs`. */
export async function waitRegionsHealthy(
  regions: readonly Pick<LocalRegion, 'name' | 'lbUrl'>[],
  dns: Pick<DnsEmulator, 'status'>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lbDown = (
      await Promise.all(regions.map(async (r) => ((await probeHealth(r.lbUrl)) ? null : r.name)))
    ).filter(Boolean);
    const dnsDown = dns
      .status()
      .regions.filter((r) => !r.healthy)
      .map((r) => r.region);
    if (lbDown.length === 0 && dnsDown.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `regions not healthy after ${timeoutMs} ms: LB /health failing in [${lbDown.join(', ')}], DNS unhealthy [${dnsDown.join(', ')}]`,
      );
    }
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

async function probeHealth(lbUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${lbUrl}/health`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    return res.status === 200;
  } catch {
    return false;
  }
}
