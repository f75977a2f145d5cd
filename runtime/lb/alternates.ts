/**
 * Alternate regions a client may fall back to when the region serving it fails: active regions with
 * a public URL, other than the serving one and those the client excluded. Ordered by the client's own
 * RTT measurements when it sent them (measured beats modelled), regions it did not measure after those,
 * and by the static distance from this LB's region otherwise. URLs are in the family the join came in on;
 * a region without a URL in that family (it has no backup name) is offered by its primary URL.
 */
import { regionDistanceKm } from '../protocol/regions';
import { MAX_ALTERNATES } from '../protocol/join';
import type { FleetSnapshot } from './FleetCache';
import { regionIsActive } from './Placement';
import { regionApiUrl, type NameFamily, type OwnUrls } from './regionUrls';

export interface Alternate {
  readonly region: string;
  readonly apiUrl: string;
}

export function chooseAlternates(
  snap: FleetSnapshot,
  args: {
    readonly own: OwnUrls;
    /** @default 'primary' */
    readonly family?: NameFamily;
    readonly servingRegion: string;
    readonly excludedRegions: ReadonlySet<string>;
    readonly rtt?: Readonly<Record<string, number>>;
  },
): Alternate[] {
  const names = new Set([args.own.region, ...snap.regions.keys()]);
  const candidates: Alternate[] = [];
  for (const region of names) {
    if (region === args.servingRegion || args.excludedRegions.has(region) || !regionIsActive(snap, region))
      continue;
    const apiUrl = regionApiUrl(snap, region, args.own, args.family) ?? regionApiUrl(snap, region, args.own);
    if (apiUrl) candidates.push({ region, apiUrl });
  }
  const rtt = args.rtt ?? {};
  const measured = (r: string) => Object.prototype.hasOwnProperty.call(rtt, r);
  candidates.sort((a, b) => {
    const ma = measured(a.region);
    const mb = measured(b.region);
    if (ma && mb) return rtt[a.region]! - rtt[b.region]! || a.region.localeCompare(b.region);
    if (ma !== mb) return ma ? -1 : 1;
    return (
      regionDistanceKm(args.own.region, a.region) - regionDistanceKm(args.own.region, b.region) ||
      a.region.localeCompare(b.region)
    );
  });
  return candidates.slice(0, MAX_ALTERNATES);
}
