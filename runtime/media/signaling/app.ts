/**
 * The media server's HTTP side: the signaling WebSocket at the LB edge's path, `/health` for the
 * instance health check, `/metrics`, and (when enabled) `/debug/stats`. It listens on the private
 * address only; the LB relays nothing but the signaling path.
 */
import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import {
  verifyCascadeToken,
  verifyMediaToken,
  TokenError,
  type CascadeClaims,
  type KeySet,
  type MediaClaims,
} from '../../protocol/tokens';
import type { Cascade } from '../Cascade';
import type { SignalingLimits } from '../config';
import type { Logger } from '../logger';
import type { MediaServer } from '../MediaServer';
import type { MediaMetrics } from '../MediaMetrics';
import { ROOM_ID_PATTERN } from '../../protocol/ids';
import { MAX_SIGNALING_FRAME_BYTES } from '../../protocol/signaling';
import { SignalingSession, type SessionServices } from './SignalingSession';

/** Both private routes: a room id, and the token the LB relay puts in the private hop's URL. */
const ROOM_TOKEN_SCHEMA = {
  params: {
    type: 'object',
    required: ['roomId'],
    additionalProperties: false,
    properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN } },
  },
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { token: { type: 'string', minLength: 1, maxLength: 4096 } },
  },
} as const;

export interface SignalingAppOptions {
  readonly serverId: string;
  readonly region: string;
  /** Load units placement may fill, for `/health`. */
  readonly capacity: number;
  /** Keys media tokens are verified with, in the URL and in `join`. */
  readonly mediaTokenKeys: KeySet;
  readonly signalingLimits: SignalingLimits;
  /** Serve `GET /debug/stats` (object counts). */
  readonly debugEndpoints: boolean;
  readonly server: MediaServer;
  readonly metrics: MediaMetrics;
  readonly logger: Logger;
  /** What `/health` says about the engine, e.g. "mediasoup 3.8.4 (legacy ...)". */
  readonly engine: string;
  /** Cascading: the other legs' control channels arrive at `/v1/rooms/:roomId/cascade`. @default - no route */
  readonly cascade?: Cascade;
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The peer id of the media token in the signaling URL, once the preHandler has verified it and
     * claimed it for this TCP connection; null without a token in the URL.
     */
    urlPeerId: string | null;
    /** The cascade route's verified token, handed from its preHandler to the socket handler. */
    cascadeClaims: CascadeClaims | null;
  }
}

export async function buildSignalingApp(options: SignalingAppOptions): Promise<FastifyInstance> {
  const { serverId, region, capacity, mediaTokenKeys, server, metrics, logger } = options;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Health checks and scrapes every few seconds would drown the call logs.
    logController: new LogController({ disableRequestLogging: true }),
  });
  await app.register(websocket, {
    options: { maxPayload: MAX_SIGNALING_FRAME_BYTES },
    // The socket's own errors (an oversized frame, invalid UTF-8, a reset) are the client's: ws has
    // already closed the socket with the matching code and the session logs them. Only an error thrown
    // by our handler is ours.
    errorHandler: (err: Error & { code?: unknown }, socket, request) => {
      if (typeof err.code === 'string' && err.code.startsWith('WS_ERR_')) return;
      request.log.error({ err }, 'signaling handler failed');
      socket.terminate();
    },
  });

  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) logger.error({ err }, 'request failed');
    return reply.code(status).send({
      error: {
        code: status === 500 ? 'internal' : (err.code ?? 'bad_request').toLowerCase(),
        message: status === 500 ? 'internal error' : err.message,
      },
    });
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } }),
  );

  // Draining is healthy (the instance must live until its calls end); no live worker is not.
  app.get('/health', async (_req, reply) => {
    const workers = server.pool.alive.length;
    return reply.code(workers > 0 ? 200 : 503).send({
      status: workers > 0 ? server.status : 'no_workers',
      serverId,
      region,
      engine: options.engine,
      workers,
      rooms: server.rooms.size,
      load: server.loadUnits,
      capacity,
      ...(options.cascade && { cascade: options.cascade.stats() }),
    });
  });

  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  if (options.debugEndpoints) app.get('/debug/stats', async () => server.stats());

  // Handed from the preHandler (which verified and claimed the URL token) to the session.
  app.decorateRequest('urlPeerId', null);
  const sessionServices: SessionServices = {
    server,
    mediaTokenKeys,
    serverId,
    region,
    limits: options.signalingLimits,
    metrics,
    logger,
  };
  app.get<{ Params: { roomId: string }; Querystring: { token?: string } }>(
    '/v1/rooms/:roomId/signal',
    {
      websocket: true,
      schema: ROOM_TOKEN_SCHEMA,
      // A token in the URL (the LB relay always sends one) is checked before the upgrade, so a stray
      // connection costs no session, and its peer id is claimed for this TCP connection: a token opens
      // one signaling session, so a second connection with it (or a token whose peer already joined)
      // is refused here with 409. The `join` request's token is the one that admits the peer.
      preHandler: async (req, reply) => {
        if (req.query.token === undefined) return;
        let claims: MediaClaims;
        try {
          claims = await verifyMediaToken(mediaTokenKeys, req.query.token, {
            roomId: req.params.roomId,
            serverId,
          });
        } catch (err) {
          if (!(err instanceof TokenError)) throw err;
          metrics.connections.inc({ outcome: 'unauthorized' });
          return reply.code(401).send({ error: { code: 'unauthorized', message: err.message } });
        }
        const refusal = server.peerIds.claim(claims.sub, req.raw.socket);
        if (refusal) {
          metrics.connections.inc({ outcome: 'token_in_use' });
          const code = refusal.reason === 'used' ? 'token_used' : 'token_in_use';
          return reply.code(409).send({ error: { code, message: refusal.message } });
        }
        req.urlPeerId = claims.sub;
      },
    },
    (socket, req) => {
      new SignalingSession({
        ...sessionServices,
        socket,
        roomId: req.params.roomId,
        connection: { holder: req.raw.socket, urlPeerId: req.urlPeerId ?? undefined },
      });
    },
  );

  const cascade = options.cascade;
  if (cascade) {
    app.decorateRequest('cascadeClaims', null);
    // Another leg's media server, relayed by this region's LB (which checked the token too). The
    // token is in the URL of the private hop only, like signaling's.
    app.get<{ Params: { roomId: string }; Querystring: { token?: string } }>(
      '/v1/rooms/:roomId/cascade',
      {
        websocket: true,
        schema: ROOM_TOKEN_SCHEMA,
        preHandler: async (req, reply) => {
          try {
            req.cascadeClaims = await verifyCascadeToken(mediaTokenKeys, req.query.token, {
              roomId: req.params.roomId,
              serverId,
            });
          } catch (err) {
            if (!(err instanceof TokenError)) throw err;
            return reply.code(401).send({ error: { code: 'unauthorized', message: err.message } });
          }
        },
      },
      (socket, req) => cascade.accept(req.cascadeClaims!, socket),
    );
  }

  return app;
}
