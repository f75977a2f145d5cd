/**
 * The join call (`POST /v1/rooms/:roomId/join`) and the shape of its answer. The answer is checked,
 * because a malformed answer from one region must count as that attempt failing, not crash the
 * session later with an undefined URL.
 *
 * The answer's `alternates` are checked one by one instead: they only extend the API fallback chain,
 * so a bad entry is dropped (and reported) while the rest of the answer is still used.
 *
 * An answer that came over https never downgrades the client: a `ws://` signaling URL makes it
 * malformed, and an `http://` alternate is dropped. Otherwise one tampered or misconfigured answer
 * would send the client's tokens in clear text on its next step.
 */
import { z } from 'zod';
import {
  alternateSchema as alternateContract,
  joinAnswerSchema as joinAnswerContract,
  MAX_ALTERNATES,
  type JoinExclusions,
  type JoinRequest,
} from '../protocol/join';
import type { ApiClient } from './ApiClient';
import { baseUrlSchema } from './baseUrl';

export type { JoinExclusions };
export type JoinRequestBody = JoinRequest;

/** The contract's alternate, with its URL normalized the way the fallback chain compares URLs. */
const alternateSchema = alternateContract.extend({ apiUrl: baseUrlSchema });

export type Alternate = z.output<typeof alternateSchema>;

/** The contract's answer, with alternates taken raw here and checked one by one below. */
const joinAnswerSchema = joinAnswerContract.extend({ alternates: z.array(z.unknown()).default([]) });

export type JoinAnswer = Omit<z.output<typeof joinAnswerSchema>, 'alternates'> & {
  /** Usable alternates only, normalized, in the LB's order. */
  readonly alternates: readonly Alternate[];
};

export class BadJoinAnswerError extends Error {
  constructor(
    readonly url: string,
    detail: string,
  ) {
    super(`the join answer from ${url} is malformed: ${detail}`);
    this.name = 'BadJoinAnswerError';
  }
}

export interface JoinCallOptions {
  readonly signal?: AbortSignal;
  /** API hedging delay of this call. @default the API client's */
  readonly hedgeMs?: number;
  /**
   * Regions whose URLs hold no other URL back (ApiClient `suspectRegions`): a switch away from a
   * suspected server does not wait on its region's names, and tells the LB nothing about that region.
   */
  readonly suspectRegions?: readonly string[];
}

export async function requestJoin(
  api: ApiClient,
  roomId: string,
  token: string,
  body: JoinRequestBody,
  { signal, hedgeMs, suspectRegions }: JoinCallOptions = {},
): Promise<{ answer: JoinAnswer; apiUrl: string; ignoredAlternates: readonly string[] }> {
  const { data, url } = await api.call<unknown>(`/v1/rooms/${encodeURIComponent(roomId)}/join`, {
    method: 'POST',
    token,
    body,
    signal,
    hedgeMs,
    suspectRegions,
    // The join excludes these regions because their edge looked dead; their LB is the last to ask.
    avoidRegions: body.exclude?.regions,
  });
  const parsed = joinAnswerSchema.safeParse(data);
  if (!parsed.success) {
    throw new BadJoinAnswerError(url, describeIssue(parsed.error, 'answer'));
  }
  const secure = url.startsWith('https:');
  if (secure && !parsed.data.signalingUrl.startsWith('wss:')) {
    throw new BadJoinAnswerError(url, 'signalingUrl: must be wss:// when the API is https://');
  }
  // A fallback that would downgrade a secure API to plain ws:// is dropped, not followed.
  const fallback = parsed.data.fallbackSignalingUrl;
  if (fallback !== undefined && secure && !fallback.startsWith('wss:')) {
    const { fallbackSignalingUrl: _dropped, ...rest } = parsed.data;
    const { alternates, ignored } = usableAlternates(rest.alternates, secure);
    return {
      answer: { ...rest, alternates },
      apiUrl: url,
      ignoredAlternates: [...ignored, 'fallbackSignalingUrl: must be wss:// when the API is https://'],
    };
  }
  const { alternates, ignored } = usableAlternates(parsed.data.alternates, secure);
  return { answer: { ...parsed.data, alternates }, apiUrl: url, ignoredAlternates: ignored };
}

/** Splits the raw alternates into the usable ones (the first MAX_ALTERNATES) and why the rest were not. */
function usableAlternates(
  raw: readonly unknown[],
  secure: boolean,
): { alternates: Alternate[]; ignored: string[] } {
  const alternates: Alternate[] = [];
  const ignored: string[] = [];
  for (const [index, entry] of raw.entries()) {
    const parsed = alternateSchema.safeParse(entry);
    if (!parsed.success) ignored.push(`alternates.${index}: ${describeIssue(parsed.error, 'entry')}`);
    else if (secure && !parsed.data.apiUrl.startsWith('https:'))
      ignored.push(`alternates.${index}.apiUrl: must be https:// when the API is https://`);
    else if (alternates.length === MAX_ALTERNATES)
      ignored.push(`alternates.${index}: more than ${MAX_ALTERNATES} alternates`);
    else alternates.push(parsed.data);
  }
  return { alternates, ignored };
}

function describeIssue(error: z.ZodError, whole: string): string {
  const issue = error.issues[0]!;
  return `${issue.path.join('.') || whole}: ${issue.message}`;
}
