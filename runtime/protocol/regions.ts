/**
 * Static facts about AWS regions that the deployment config, the LB (alternate ordering when a client
 * reports no RTTs) and the local DNS emulator (latency routing by client location) share.
 *
 * Pure data: imported by CDK code and by runtime processes alike, so it must not import aws-cdk-lib.
 */

interface RegionGeo {
  /** Approximate latitude/longitude of the region's metro, degrees. */
  readonly lat: number;
  readonly lon: number;
  /** Stable number used to derive non-overlapping defaults (VPC CIDRs) that do not depend on list order. */
  readonly ordinal: number;
}

const REGIONS = {
  'us-east-1': { lat: 38.9, lon: -77.4, ordinal: 1 },
  'us-east-2': { lat: 40.0, lon: -83.0, ordinal: 2 },
  'us-west-1': { lat: 37.4, lon: -121.9, ordinal: 3 },
  'us-west-2': { lat: 45.8, lon: -119.7, ordinal: 4 },
  'ca-central-1': { lat: 45.5, lon: -73.6, ordinal: 5 },
  'sa-east-1': { lat: -23.5, lon: -46.6, ordinal: 6 },
  'eu-west-1': { lat: 53.3, lon: -6.3, ordinal: 7 },
  'eu-west-2': { lat: 51.5, lon: -0.1, ordinal: 8 },
  'eu-west-3': { lat: 48.9, lon: 2.4, ordinal: 9 },
  'eu-central-1': { lat: 50.1, lon: 8.7, ordinal: 10 },
  'eu-north-1': { lat: 59.3, lon: 18.1, ordinal: 11 },
  'eu-south-1': { lat: 45.5, lon: 9.2, ordinal: 12 },
  'me-south-1': { lat: 26.1, lon: 50.6, ordinal: 13 },
  'af-south-1': { lat: -33.9, lon: 18.4, ordinal: 14 },
  'ap-south-1': { lat: 19.1, lon: 72.9, ordinal: 15 },
  'ap-east-1': { lat: 22.3, lon: 114.2, ordinal: 16 },
  'ap-southeast-1': { lat: 1.3, lon: 103.8, ordinal: 17 },
  'ap-southeast-2': { lat: -33.9, lon: 151.2, ordinal: 18 },
  'ap-northeast-1': { lat: 35.7, lon: 139.7, ordinal: 19 },
  'ap-northeast-2': { lat: 37.6, lon: 127.0, ordinal: 20 },
  'ap-northeast-3': { lat: 34.7, lon: 135.5, ordinal: 21 },
} as const satisfies Record<string, RegionGeo>;

export type AwsRegion = keyof typeof REGIONS;

export const AWS_REGIONS = Object.keys(REGIONS) as [AwsRegion, ...AwsRegion[]];

export function isAwsRegion(name: string): name is AwsRegion {
  return Object.prototype.hasOwnProperty.call(REGIONS, name);
}

export function regionOrdinal(region: AwsRegion): number {
  return REGIONS[region].ordinal;
}

const EARTH_RADIUS_KM = 6371;

/** Great-circle distance between two regions, km. A proxy for RTT when no measurement exists. */
export function regionDistanceKm(a: string, b: string): number {
  if (a === b) return 0;
  if (!isAwsRegion(a) || !isAwsRegion(b)) return Number.MAX_SAFE_INTEGER;
  const ra = REGIONS[a];
  const rb = REGIONS[b];
  const toRad = (deg: number) => (deg * Math.PI) / 180;
  const dLat = toRad(rb.lat - ra.lat);
  const dLon = toRad(rb.lon - ra.lon);
  const h =
    Math.sin(dLat / 2) ** 2 + Math.cos(toRad(ra.lat)) * Math.cos(toRad(rb.lat)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.sqrt(h));
}

/** `candidates` ordered nearest-first from `from` (ties broken by name so the order is deterministic). */
export function byDistanceFrom<T extends string>(from: string, candidates: readonly T[]): T[] {
  return [...candidates].sort(
    (x, y) => regionDistanceKm(from, x) - regionDistanceKm(from, y) || x.localeCompare(y),
  );
}
