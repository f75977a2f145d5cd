/**
 * The LB's logger. Request lines never carry credentials: clients send the media token as a
 * subprotocol and the join token in a header, but a URL is whatever a client typed, so any
 * `token`-like query value is redacted before a line is written (a misbehaving client must not put a
 * live credential into the log store).
 */
import type { FastifyRequest } from 'fastify';
import pino, { type Logger } from 'pino';

const SECRET_QUERY = /([?&](?:token|access_token|jwt|auth)=)[^&#]*/gi;

/** A URL as it may be logged: secret-looking query values replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[redacted]');
}

/** fastify's request serializer, with the URL redacted. */
function requestSerializer(request: FastifyRequest) {
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

export function createLbLogger(
  opts: { level: string; region: string },
  stream?: pino.DestinationStream,
): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: 'lb', region: opts.region },
      serializers: { req: requestSerializer },
      // Belt and braces: a header logged by mistake must not leak either.
      redact: ['req.headers.authorization', 'req.headers["sec-websocket-protocol"]'],
    },
    stream,
  );
}
