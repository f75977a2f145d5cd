/**
 * Public URLs of regions as this LB knows them: its own from its config, the others from the summary
 * items their LBs write. A region never lists the others in its config (see DESIGN.md), so a region
 * whose LB has not reported yet has no URL and cannot be offered to clients.
 *
 * Every region has a URL in each of two name families: primary (`<region>.api.<domain>`) and backup
 * (`<region>.api-backup.<backupDomain>`). An answer stays in the family its request came in on (the
 * request's Host), because a client that reached us through a backup name may have no working primary
 * zone at all: sending it back there to signal would undo the backup family's whole point.
 *
 * The local stack adds a third family, `address` (`http://<region address>:<port>`), for requests whose
 * Host is an IP literal: its browser demo cannot resolve the emulated zones. AWS deployments have no
 * address family, so there an IP-literal Host gets primary names like any other unknown Host.
 */
import * as net from 'node:net';
import type { FleetSnapshot } from './FleetCache';

export type NameFamily = 'primary' | 'backup' | 'address';

export interface OwnUrls {
  readonly region: string;
  readonly publicApiUrl: string;
  /** This region in the backup family; undefined when the deployment has none. */
  readonly backupApiUrl?: string;
  /** This region by address (the local stack only). */
  readonly addressApiUrl?: string;
}

const OWN_URL = {
  primary: 'publicApiUrl',
  backup: 'backupApiUrl',
  address: 'addressApiUrl',
} as const satisfies Record<NameFamily, keyof OwnUrls>;
const SUMMARY_URL = {
  primary: 'apiUrl',
  backup: 'backupApiUrl',
  address: 'addressApiUrl',
} as const;

/** The region's API base in `family`, or null when it is not known (yet). */
export function regionApiUrl(
  snap: FleetSnapshot,
  region: string,
  own: OwnUrls,
  family: NameFamily = 'primary',
): string | null {
  const url =
    region === own.region ? own[OWN_URL[family]] : snap.regions.get(region)?.summary?.[SUMMARY_URL[family]];
  return url ? url.replace(/\/+$/, '') : null;
}

/**
 * The family of a request's Host header: backup when its name is the backup domain or under it;
 * address when it is an IP literal and this LB has an address family (the local stack); primary
 * otherwise (the primary names, an unknown or missing Host).
 */
export function familyOfHost(
  host: string | undefined,
  families: { readonly backupDomain?: string; readonly addressApiUrl?: string },
): NameFamily {
  if (!host) return 'primary';
  const name = hostnameOf(host);
  if (families.addressApiUrl && net.isIP(name)) return 'address';
  if (!families.backupDomain) return 'primary';
  const domain = families.backupDomain.toLowerCase().replace(/\.$/, '');
  return name === domain || name.endsWith(`.${domain}`) ? 'backup' : 'primary';
}

/** `Host` without its port (and without an IPv6 literal's brackets), lowercase, no trailing dot. */
function hostnameOf(host: string): string {
  const h = host.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']')) : h.replace(/:\d*$/, '');
  return name.replace(/\.$/, '');
}

/** The family a client falls back to when it cannot reach a name of `family`; none for addresses. */
export function otherFamily(family: NameFamily): NameFamily | null {
  return family === 'primary' ? 'backup' : family === 'backup' ? 'primary' : null;
}

/**
 * `wss://<region api>/v1/rooms/<room>/signal` (ws:// for a plain-http local stack). No token: the client
 * presents the answer's media token as a subprotocol (runtime/protocol/subprotocol.ts).
 */
export function signalingUrl(apiUrl: string, roomId: string): string {
  const url = new URL(apiUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/rooms/${encodeURIComponent(roomId)}/signal`;
  url.search = '';
  return url.toString();
}

/** The media server's signaling URL behind the relay: `<endpoint>/v1/rooms/<room>/signal?token=…`. */
export function upstreamSignalingUrl(endpoint: string, roomId: string, mediaToken: string): string {
  const url = new URL(endpoint);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/rooms/${encodeURIComponent(roomId)}/signal`;
  url.search = `?token=${encodeURIComponent(mediaToken)}`;
  return url.toString();
}

/**
 * The host of a region's TURN relay: `prefix` + the host of the region's API URL. Derived from the same
 * URL as the signaling URL, so the relay is the serving region's and in the family the answer is in.
 */
export function turnHost(apiUrl: string, prefix: string): string {
  return `${prefix}${new URL(apiUrl).hostname}`;
}
