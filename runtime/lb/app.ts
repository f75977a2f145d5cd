/**
 * The LB service as a fastify app. Everything it talks to is injected (store, clock, config, metrics
 * registry, logger), so tests build it against a real dynalite and drive it with `app.inject()`.
 */
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { MAX_SIGNALING_FRAME_BYTES, SIGNALING_CLOSE } from '../protocol/signaling';
import { CASCADE_SUBPROTOCOL, SIGNALING_SUBPROTOCOL } from '../protocol/subprotocol';
import type { Store } from '../store';
import { ApiError } from './apiError';
import type { Clock, LbConfig } from './config';
import { clientErrorResponse, errorHandling, formatSchemaErrors, frameworkErrorReply } from './errorHandler';
import { LbMetrics } from './LbMetrics';
import { healthRoutes } from './routes/health';
import { joinRoutes } from './routes/join';
import { metricsRoutes } from './routes/metrics';
import { pingRoutes } from './routes/ping';
import { regionRoutes } from './routes/regions';
import { serverRoutes } from './routes/servers';
import { cascadeRoutes } from './routes/cascade';
import { signalRoutes } from './routes/signal';
import { lbServices } from './services';

export interface BuildAppOptions {
  readonly store: Store;
  readonly config: LbConfig;
  /** @default Date.now */
  readonly clock?: Clock;
  /** Prometheus registry for the LB's metrics. @default a new registry per app */
  readonly registry?: Registry;
  /** @default no logging */
  readonly logger?: FastifyBaseLogger;
}

/** How often Node looks for requests past their headers or request timeout. */
const TIMEOUT_SWEEP_MS = 1_000;

export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const { limits } = config;
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new Error(
      `headersTimeoutMs (${limits.headersTimeoutMs}) exceeds requestTimeoutMs (${limits.requestTimeoutMs}); headers are part of the request`,
    );
  }
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: limits.bodyLimitBytes,
    requestTimeout: limits.requestTimeoutMs,
    http: {
      headersTimeout: limits.headersTimeoutMs,
      // Node checks both timeouts only this often (30 s by default): a slow client was held for 30 s
      // past its headers timeout and up to 90 s past its request timeout. A second's sweep of the
      // open connections is cheap next to that.
      connectionsCheckingInterval: TIMEOUT_SWEEP_MS,
    },
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Idle sockets die shortly after keep-alive would have closed them (upgraded sockets opt out).
    connectionTimeout: limits.keepAliveTimeoutMs + 5_000,
    // Trust exactly the configured proxy hops (the ALB), so X-Forwarded-For cannot be forged past them.
    trustProxy: (_address: string, hop: number) => hop < config.trustProxyHops,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
    schemaErrorFormatter: formatSchemaErrors,
    frameworkErrors: frameworkErrorReply,
    clientErrorHandler: clientErrorResponse,
  });

  // The API speaks JSON only; fastify's default text parser would turn a text body into a confusing 400.
  app.removeContentTypeParser('text/plain');
  // Every answer names the region that gave it, errors and shed joins included: a client learns which
  // region stands behind each name it calls (a latency-routed or weighted one changes), and a switch
  // away from a suspected region asks the names that last led there last.
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('x-region', config.region);
  });

  const metrics = new LbMetrics({ registry: opts.registry, region: config.region });
  await app.register(lbServices, { store: opts.store, config, clock: opts.clock ?? Date.now, metrics });
  await app.register(errorHandling, { onStoreError: (err) => metrics.countDbError(err) });
  await app.register(helmet, {
    // A public API called from other origins (the demo page, RTT probes): resources are cross-origin.
    crossOriginResourcePolicy: { policy: 'cross-origin' },
  });
  await app.register(cors, {
    origin: config.corsOrigins.length > 0 ? [...config.corsOrigins] : false,
    methods: ['GET', 'POST'],
    allowedHeaders: ['authorization', 'content-type'],
    // Retry-After: a browser client must read it to honour a shed join.
    exposedHeaders: ['x-region', 'retry-after'],
    maxAge: 600,
  });
  await app.register(rateLimit, {
    global: true,
    max: limits.requestsPerMinute,
    timeWindow: 60_000,
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        429,
        'rate_limited',
        `rate limit of ${context.max} per ${context.after} exceeded; retry later`,
      ),
  });
  await app.register(websocket, {
    options: {
      maxPayload: MAX_SIGNALING_FRAME_BYTES,
      // The client offers the protocol and its token (runtime/protocol/subprotocol.ts); only the protocol
      // is selected, so the token is never echoed back.
      handleProtocols: (offered) =>
        offered.has(SIGNALING_SUBPROTOCOL)
          ? SIGNALING_SUBPROTOCOL
          : offered.has(CASCADE_SUBPROTOCOL)
            ? CASCADE_SUBPROTOCOL
            : false,
    },
    // Socket errors (oversized frames, resets) are the client's; the relay closes both legs on them.
    errorHandler: (err, socket, request) => {
      request.log.debug({ err }, 'signaling socket error');
      if (socket.readyState === socket.OPEN) socket.close(SIGNALING_CLOSE.internal, 'internal error');
    },
  });

  await app.register(joinRoutes);
  await app.register(signalRoutes);
  await app.register(cascadeRoutes);
  await app.register(healthRoutes);
  await app.register(regionRoutes);
  await app.register(serverRoutes);
  await app.register(pingRoutes);
  await app.register(metricsRoutes);
  app.setNotFoundHandler({ preHandler: app.rateLimit() }, async (request, reply) =>
    reply.code(404).send({
      error: {
        code: 'not_found',
        message: `no route for ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`,
      },
    }),
  );
  return app;
}
