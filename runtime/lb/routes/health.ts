/**
 * `GET /health`: 200 when this region can serve joins, 503 with the reasons otherwise. Route 53 and the
 * local DNS emulator probe it; see regionHealth.ts for what "can serve" means and why it is bounded.
 */
import type { FastifyInstance } from 'fastify';
import { checkRegionHealth } from '../regionHealth';
import { noQuery } from '../schemas';

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  const { region, healthDeadlineMs, healthCacheMs, limits } = app.lbConfig;
  app.get(
    '/health',
    { schema: { querystring: noQuery }, config: { rateLimit: { max: limits.healthProbesPerMinute } } },
    async (_request, reply) => {
      const health = await checkRegionHealth(app.fleet, {
        region,
        deadlineMs: healthDeadlineMs,
        maxAgeMs: healthCacheMs,
        clock: app.clock,
        isAlive: (s, now) => app.store.servers.isAlive(s, now),
        onStoreError: (err) => app.metrics.countDbError(err),
      });
      reply.code(health.healthy ? 200 : 503).header('cache-control', 'no-store');
      return {
        status: health.healthy ? 'ok' : 'unhealthy',
        region,
        reasons: health.reasons,
        liveServers: health.liveServers,
        regionStatus: health.regionStatus,
      };
    },
  );
}
