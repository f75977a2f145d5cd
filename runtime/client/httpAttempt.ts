/**
 * One HTTP exchange with one URL under a per-attempt timeout, classified the way the fallback policy
 * needs it: which outcomes mean "try the next URL" and which mean "the caller got it wrong".
 */
import { REGION_PATTERN } from '../protocol/ids';
import type { AttemptOutcome } from './errors';
import type { HttpTransport } from './platform';
import { abortReason, nowMs } from './timers';

export interface AttemptResult {
  readonly outcome: AttemptOutcome;
  readonly status?: number;
  readonly body?: string;
  readonly detail?: string;
  readonly elapsedMs: number;
  /** The server's `Retry-After`, in ms (delta-seconds only; dates are ignored). */
  readonly retryAfterMs?: number;
  /** The region whose LB answered (`X-Region`), when it said. */
  readonly region?: string;
}

class AttemptTimeout extends Error {}

/** A region name as an answer may carry it; anything else (a proxy's header, garbage) is ignored. */
const REGION = new RegExp(REGION_PATTERN);

export async function attemptHttp(
  http: HttpTransport,
  request: { method: 'GET' | 'POST'; url: string; headers?: Record<string, string>; body?: string },
  timeoutMs: number,
  callerSignal?: AbortSignal,
): Promise<AttemptResult> {
  if (callerSignal?.aborted) throw abortReason(callerSignal);
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new AttemptTimeout(`no answer within ${timeoutMs} ms`)),
    timeoutMs,
  );
  const onCallerAbort = () => controller.abort(callerSignal!.reason);
  callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
  const startedAt = nowMs();
  const elapsed = () => Math.round(nowMs() - startedAt);
  try {
    const response = await http({ ...request, signal: controller.signal });
    const { status } = response;
    const outcome: AttemptOutcome =
      status >= 200 && status < 300
        ? 'ok'
        : status >= 400 && status < 500
          ? 'client_error'
          : status >= 500
            ? 'server_error'
            : 'bad_answer';
    const retryAfterMs = parseRetryAfterMs(response.retryAfter);
    const region =
      response.region !== undefined && REGION.test(response.region) ? response.region : undefined;
    return {
      outcome,
      status,
      body: response.body,
      elapsedMs: elapsed(),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      ...(region !== undefined ? { region } : {}),
    };
  } catch (err) {
    // The caller's cancellation is not a property of the URL: stop trying altogether.
    if (callerSignal?.aborted) throw abortReason(callerSignal);
    if (controller.signal.reason instanceof AttemptTimeout) {
      return { outcome: 'timeout', detail: controller.signal.reason.message, elapsedMs: elapsed() };
    }
    return { outcome: 'network_error', detail: describeNetworkError(err), elapsedMs: elapsed() };
  } finally {
    clearTimeout(timer);
    callerSignal?.removeEventListener('abort', onCallerAbort);
  }
}

function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: string }).code ?? (err.cause as { code?: string } | undefined)?.code;
  return code ? `${code}: ${err.message}` : err.message;
}

/** Longest wait a server may ask for; beyond it the client's own backoff cap governs. */
const MAX_RETRY_AFTER_MS = 60_000;

/** `Retry-After: <delta-seconds>` in ms; undefined for an absent or unparseable value. */
export function parseRetryAfterMs(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d{1,6}\s*$/.test(value)) return undefined;
  return Math.min(Number(value) * 1000, MAX_RETRY_AFTER_MS);
}
