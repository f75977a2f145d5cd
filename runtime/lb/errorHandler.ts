/**
 * The one place errors become answers: `{ error: { code, message } }`, a 4xx with a message the caller
 * can act on for anything the caller sent, a 5xx with the details logged and hidden otherwise.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import { TokenError } from '../protocol/tokens';
import { StoreError, ThrottledError, StoreUnavailableError } from '../store';
import { ApiError } from './apiError';

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

/** Fastify's own 4xx errors, renamed into our vocabulary; their messages are safe to show. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  // Raised by the router before any route or hook runs (an undecodable percent-escape in the path).
  FST_ERR_BAD_URL: 'bad_url',
};

export interface MappedError {
  readonly status: number;
  readonly body: ErrorBody;
  /** `Retry-After` seconds, when the error says when to retry. */
  readonly retryAfterSeconds?: number;
  /** Whether the error is ours (log it as an error) rather than the caller's. */
  readonly fault: boolean;
}

export function mapError(err: unknown): MappedError {
  const answer = (status: number, code: string, message: string, fault = false): MappedError => ({
    status,
    body: { error: { code, message } },
    fault,
  });
  if (err instanceof ApiError) {
    const mapped = answer(
      err.statusCode,
      err.code,
      err.message,
      err.statusCode >= 500 && !err.retryAfterSeconds,
    );
    return err.retryAfterSeconds ? { ...mapped, retryAfterSeconds: err.retryAfterSeconds } : mapped;
  }
  if (err instanceof TokenError)
    return answer(err.code === 'token_wrong_scope' ? 403 : 401, err.code, err.message);
  if (err instanceof StoreError) {
    if (err instanceof StoreUnavailableError || err instanceof ThrottledError) {
      return answer(
        503,
        'store_unavailable',
        "this region's database did not answer; retry or use another region",
        true,
      );
    }
    return answer(500, 'internal', 'internal error', true);
  }
  const fe = err as Partial<FastifyError>;
  if (fe.validation) return answer(400, 'invalid_request', fe.message ?? 'invalid request');
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return answer(fe.statusCode, FASTIFY_CODES[fe.code ?? ''] ?? 'bad_request', fe.message ?? 'bad request');
  }
  return answer(500, 'internal', 'internal error', true);
}

export const errorHandling = fp(
  async (app: FastifyInstance, opts: { onStoreError: (err: StoreError) => void }) => {
    app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
      const mapped = mapError(err);
      if (err instanceof StoreError) opts.onStoreError(err);
      if (mapped.fault) request.log.error({ err }, 'request failed');
      else
        request.log.info({ code: mapped.body.error.code, status: mapped.status }, mapped.body.error.message);
      if (mapped.status === 401) reply.header('www-authenticate', 'Bearer');
      if (mapped.retryAfterSeconds) reply.header('retry-after', String(mapped.retryAfterSeconds));
      return reply.code(mapped.status).send(mapped.body);
    });
  },
  { name: 'lb-error-handling' },
);

/** Ajv errors → one sentence naming the field, e.g. `body has an unknown field "extra"`. */
export function formatSchemaErrors(
  errors: ReadonlyArray<{
    instancePath: string;
    keyword: string;
    params: Record<string, unknown>;
    message?: string;
    /** Set by Ajv on errors raised while checking a `propertyNames` schema. */
    propertyName?: string;
  }>,
  dataVar: string,
): Error {
  const first = errors[0];
  if (!first) return new Error(`${dataVar} is invalid`);
  const where = [dataVar, ...first.instancePath.split('/').filter(Boolean)].join('.');
  if (first.keyword === 'additionalProperties') {
    return new Error(`${where} has an unknown field "${String(first.params.additionalProperty)}"`);
  }
  if (first.propertyName !== undefined || first.keyword === 'propertyNames') {
    return new Error(
      `${where} has an invalid key "${String(first.propertyName ?? first.params.propertyName)}"`,
    );
  }
  return new Error(`${where} ${first.message ?? 'is invalid'}`);
}

/**
 * Errors the router raises before the app's error handler exists for the request (fastify's
 * `frameworkErrors`): answered in the same `{ error: { code, message } }` shape as everything else.
 */
export function frameworkErrorReply(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const mapped = mapError(err);
  void reply.code(mapped.status).send(mapped.body);
}

/**
 * Requests Node's HTTP parser cannot read (fastify's `clientErrorHandler`): the connection is not
 * usable, so the answer is written on the raw socket, in our error shape, and the socket closed.
 */
export function clientErrorResponse(err: Error & { code?: string }, socket: Socket): void {
  // A reset socket has nothing left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', 'the request was not received in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'the request headers are too large']
        : [400, 'bad_request', 'the request is not valid HTTP'];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
