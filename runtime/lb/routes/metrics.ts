/** `GET /metrics`: Prometheus text of the LB's own registry. */
import type { FastifyInstance } from 'fastify';
import { noQuery } from '../schemas';

export async function metricsRoutes(app: FastifyInstance): Promise<void> {
  app.get('/metrics', { schema: { querystring: noQuery } }, async (_request, reply) => {
    reply.type(app.metrics.registry.contentType).header('cache-control', 'no-store');
    return app.metrics.registry.metrics();
  });
}
