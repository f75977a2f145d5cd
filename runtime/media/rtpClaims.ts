/**
 * The identifiers a producer's RTP parameters claim on its transport: its mid, its SSRCs (RTX ones
 * included) and its RIDs. mediasoup's RTP listener routes packets by them and refuses a producer that
 * repeats one held on the same transport, but as a failure of its own (a plain Error, indistinguishable
 * from a worker fault); checking first turns a client's duplicate into a `bad_request` that names it.
 *
 * The reading follows the worker's: an SSRC counts when it is a non-negative JSON integer (as uint32,
 * 0 meaning none), a mid or RID when it is a non-empty string, and a repeated RID only conflicts when
 * the new producer has no mid.
 */
import type { MediasoupObject } from './engine';

export interface RtpClaims {
  readonly mid?: string;
  readonly ssrcs: readonly number[];
  readonly rids: readonly string[];
}

const UINT32 = 2 ** 32;

export function rtpClaims(rtpParameters: MediasoupObject): RtpClaims {
  const { mid, encodings } = rtpParameters;
  const ssrcs: number[] = [];
  const rids: string[] = [];
  for (const encoding of Array.isArray(encodings) ? (encodings as unknown[]) : []) {
    if (!isObject(encoding)) continue;
    const ssrc = ssrcOf(encoding.ssrc);
    if (ssrc) ssrcs.push(ssrc);
    const rtxSsrc = isObject(encoding.rtx) ? ssrcOf(encoding.rtx.ssrc) : 0;
    if (rtxSsrc) ssrcs.push(rtxSsrc);
    if (typeof encoding.rid === 'string' && encoding.rid !== '') rids.push(encoding.rid);
  }
  return { mid: typeof mid === 'string' && mid !== '' ? mid : undefined, ssrcs, rids };
}

/** Why a producer claiming `wanted` cannot join producers holding `held`; undefined when it can. */
export function rtpClaimConflict(
  wanted: RtpClaims,
  held: Iterable<readonly [producerId: string, claims: RtpClaims]>,
): string | undefined {
  const own = firstRepeat(wanted.ssrcs);
  if (own !== undefined) return `SSRC ${own} appears twice in rtpParameters.encodings`;
  if (wanted.mid === undefined) {
    const rid = firstRepeat(wanted.rids);
    if (rid !== undefined) return `rid "${rid}" appears twice in rtpParameters.encodings and no mid is given`;
  }
  for (const [producerId, claims] of held) {
    const ssrc = wanted.ssrcs.find((s) => claims.ssrcs.includes(s));
    if (ssrc !== undefined)
      return `SSRC ${ssrc} is already used by producer "${producerId}" on this transport`;
    if (wanted.mid !== undefined && wanted.mid === claims.mid) {
      return `mid "${wanted.mid}" is already used by producer "${producerId}" on this transport`;
    }
    const rid = wanted.mid === undefined ? wanted.rids.find((r) => claims.rids.includes(r)) : undefined;
    if (rid !== undefined) {
      return `rid "${rid}" is already used by producer "${producerId}" on this transport; give a mid`;
    }
  }
  return undefined;
}

function ssrcOf(value: unknown): number {
  // Beyond 2^53 JSON.stringify writes digits the worker reads as a float, which it ignores.
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value % UINT32 : 0;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object';
}

function firstRepeat<T>(values: readonly T[]): T | undefined {
  const seen = new Set<T>();
  for (const v of values) {
    if (seen.has(v)) return v;
    seen.add(v);
  }
  return undefined;
}
