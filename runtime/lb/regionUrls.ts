/**
 * Public URLs of regions as this LB knows them: its own from its config, the others from the summary
 * items their LBs write. A region never lists the others in its config (see DESIGN.md), so a region
 * whose LB has not reported yet has no URL and cannot be offered to clients.
 */
import type { FleetSnapshot } from './FleetCache';

export function regionApiUrl(
  snap: FleetSnapshot,
  region: string,
  own: { region: string; publicApiUrl: string },
): string | null {
  if (region === own.region) return own.publicApiUrl;
  const url = snap.regions.get(region)?.summary?.apiUrl;
  return url ? url.replace(/\/+$/, '') : null;
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
