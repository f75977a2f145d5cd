/**
 * Outage policy: what a session does between losing its server (or failing its first join) and being
 * connected again. Decisions only; the attempts themselves are connectOnce.ts.
 *
 * - Exclusions sent with a rejoin: the lost server, unless the server itself said the room moved or
 *   closed (then the LB's current answer is the right one). An attempt adds what it proved dead: the
 *   server it was placed on when that server failed it, and the server's region too when the region's
 *   edge could not even open a socket. If the API has nowhere left to send us, region exclusions are
 *   dropped (the LB knows more than one client does), and at a second such answer in a row the server
 *   exclusions too. The API URLs of excluded regions are asked last (joinApi.ts).
 * - Timing: exponential backoff with full jitter and a cap before every attempt (see backoff.ts), even
 *   the first one of an outage (its herd is the largest); a user's first join tries at once. When
 *   the API sheds the join (`503` + `Retry-After` from every URL asked), the next attempt waits at
 *   least that long, jittered over [Retry-After, 2 x Retry-After] so the shed herd does not return as
 *   one wave.
 *   `backoff.maxAttempts` per outage, `backoff.joinAttempts` for the first join.
 * - Retry classification: network-level and server-side failures are retried; a 4xx from the join API
 *   (bad token, unknown room) or a full room is final, since retrying cannot fix it, and so is
 *   anything unexpected (a local bug must surface, not loop).
 */
import { backoffDelayMs } from './backoff';
import type { BackoffConfig } from './config';
import type { RejoinReason } from './Connection';
import {
  ApiError,
  ApiUnavailableError,
  SignalingLostError,
  SignalingOpenError,
  SignalingRequestError,
} from './errors';
import { BadJoinAnswerError, type JoinExclusions } from './joinApi';
import { SIGNALING_CLOSE } from '../protocol/signaling';
import { abortReason, nowMs, sleep } from './timers';

/** Servers remembered as dead during one outage; older ones have likely been replaced by then. */
const MAX_EXCLUDED_SERVERS = 8;
/** Regions excluded during one outage; beyond this the client would exclude most of the platform. */
const MAX_EXCLUDED_REGIONS = 3;
/** Join refusals that no retry can fix: the room holds as many peers as it may. */
const FINAL_JOIN_REFUSALS = new Set(['room_full']);

/** What one outage has learned so far; every attempt of the outage sends its exclusions. */
export interface Outage {
  readonly reason: RejoinReason;
  readonly detectedAt: number;
  readonly serverIds: string[];
  readonly regions: string[];
  /** Consecutive attempts the API could not place us with these exclusions. */
  unavailableStreak: number;
}

/** The state a user's first join starts from: nothing excluded yet. */
export function firstJoinOutage(): Outage {
  return {
    reason: 'signaling_closed',
    detectedAt: nowMs(),
    serverIds: [],
    regions: [],
    unavailableStreak: 0,
  };
}

/** An outage that starts now because the connection to `serverId` was lost for `reason`. */
export function outageAfterLoss(reason: RejoinReason, serverId: string): Outage {
  return {
    reason,
    detectedAt: nowMs(),
    serverIds: suspectsServer(reason) ? [serverId] : [],
    regions: [],
    unavailableStreak: 0,
  };
}

/**
 * Whether a loss points at the server. A moved or closed room is not the server's fault: the LB's next
 * answer may well be the same server. Draining, a dead worker or an evacuated region are, and so is
 * any loss the server did not explain (socket, pings, ICE).
 */
export function suspectsServer(reason: RejoinReason): boolean {
  return reason !== 'room_moved' && reason !== 'room_closed';
}

/** The outage's exclusions as the join body carries them (absent when empty). */
export function joinExclusions(outage: Outage): JoinExclusions {
  return {
    ...(outage.serverIds.length ? { serverIds: [...outage.serverIds] } : {}),
    ...(outage.regions.length ? { regions: [...outage.regions] } : {}),
  };
}

/** An attempt failed; `serverId`/`region` say where it was placed, `excludeRegion` that the region looks dead. */
export class AttemptFailure extends Error {
  constructor(
    readonly failure: unknown,
    readonly serverId?: string,
    readonly region?: string,
    readonly excludeRegion = false,
  ) {
    super(failure instanceof Error ? failure.message : String(failure));
  }
}

/**
 * Updates the outage's exclusions with what a failed attempt proved. Returns whether a region was
 * excluded: the RTT ranking the next join reports is then worth measuring again.
 */
export function learnFrom(outage: Outage, err: unknown): { regionExcluded: boolean } {
  if (err instanceof AttemptFailure) {
    if (err.serverId) pushBounded(outage.serverIds, err.serverId, MAX_EXCLUDED_SERVERS);
    if (err.excludeRegion && err.region) pushBounded(outage.regions, err.region, MAX_EXCLUDED_REGIONS);
    outage.unavailableStreak = 0;
    return { regionExcluded: err.excludeRegion };
  }
  if (err instanceof ApiUnavailableError) {
    // Nowhere left to send us: first trust the LB over our region guesses, then over our server
    // guesses too (a restarted server may come back under its old id).
    outage.unavailableStreak++;
    outage.regions.length = 0;
    if (outage.unavailableStreak >= 2) outage.serverIds.length = 0;
  }
  return { regionExcluded: false };
}

/** Failures a later attempt may not hit; anything else (a 4xx, a local bug) ends the session. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ApiError) return err.retryable;
  if (err instanceof SignalingRequestError && FINAL_JOIN_REFUSALS.has(err.code)) return false;
  return (
    err instanceof ApiUnavailableError ||
    err instanceof BadJoinAnswerError ||
    err instanceof SignalingOpenError ||
    err instanceof SignalingLostError ||
    err instanceof SignalingRequestError
  );
}

/** The server refused the media token (expired on the way, or already used): a fresh join fixes it. */
export function isMediaTokenRefusal(err: unknown): boolean {
  return (
    (err instanceof SignalingRequestError && ['unauthorized', 'forbidden'].includes(err.code)) ||
    (err instanceof SignalingLostError && err.closeCode === SIGNALING_CLOSE.unauthorized)
  );
}

/** The signaling connection went away under an operation: the rejoin will restore what it did. */
export function isConnectionLoss(err: unknown): boolean {
  return err instanceof SignalingLostError;
}

export interface AttemptSchedule {
  /** 1-based attempt within this outage. */
  readonly attempt: number;
  /** Jittered wait before this attempt. */
  readonly delayMs: number;
  readonly exclude: { readonly serverIds: readonly string[]; readonly regions: readonly string[] };
}

export interface RetryOptions<T> {
  readonly outage: Outage;
  readonly maxAttempts: number;
  /** Wait a jittered delay even before the first attempt: true for an outage, false for a first join. */
  readonly backoffFirst: boolean;
  readonly backoff: Pick<BackoffConfig, 'baseMs' | 'capMs'>;
  /** Random source for the jitter. */
  readonly random?: () => number;
  /** Aborting it ends the retries at once with its reason. */
  readonly signal: AbortSignal;
  /** One attempt with the outage's current exclusions. */
  readonly attempt: (outage: Outage) => Promise<T>;
  /** Called before each attempt's wait, with the exclusions it will send. */
  readonly onScheduled?: (schedule: AttemptSchedule) => void;
  /** A failure proved a region dead. */
  readonly onRegionExcluded?: () => void;
}

/**
 * Runs `attempt` until one succeeds, `maxAttempts` run out, or a failure proves retrying useless
 * (that failure is thrown as it is, unwrapped from its AttemptFailure).
 */
export async function retryUntilConnected<T>(
  options: RetryOptions<T>,
): Promise<{ result: T; attempts: number; attemptMs: number }> {
  const { outage, maxAttempts, backoffFirst, signal } = options;
  let lastError: unknown;
  /** What the API asked for with `Retry-After` after the previous attempt. */
  let askedMs = 0;
  const random = options.random ?? Math.random;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const backoffAttempt = backoffFirst ? attempt : attempt - 1;
    let delayMs = backoffAttempt < 0 ? 0 : backoffDelayMs(backoffAttempt, options.backoff, random);
    if (askedMs > 0) delayMs = Math.max(delayMs, Math.floor(askedMs * (1 + random())));
    askedMs = 0;
    options.onScheduled?.({
      attempt: attempt + 1,
      delayMs,
      exclude: { serverIds: [...outage.serverIds], regions: [...outage.regions] },
    });
    await sleep(delayMs, signal);
    const startedAt = nowMs();
    try {
      const result = await options.attempt(outage);
      return { result, attempts: attempt + 1, attemptMs: Math.round(nowMs() - startedAt) };
    } catch (err) {
      if (signal.aborted) throw abortReason(signal);
      lastError = err instanceof AttemptFailure ? err.failure : err;
      if (!isRetryable(lastError)) throw lastError;
      if (lastError instanceof ApiUnavailableError) askedMs = lastError.retryAfterMs ?? 0;
      if (learnFrom(outage, err).regionExcluded) options.onRegionExcluded?.();
    }
  }
  const detail = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(`gave up after ${maxAttempts} attempts; the last one failed with: ${detail}`, {
    cause: lastError,
  });
}

function pushBounded(list: string[], value: string, max: number): void {
  if (list.includes(value)) return;
  list.push(value);
  if (list.length > max) list.shift();
}
