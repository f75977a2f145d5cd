/**
 * `GET /v1/regions`: every region the table knows, with its operator status, its public URL and its
 * load as its LB last reported it. Live-server counts come from heartbeats (at most one cache refresh
 * old), which are fresher than the summaries other LBs write every few seconds. The view is the one
 * `/health` answers from (see regionHealth.ts): probing both costs the table one refresh a second.
 */
import type { FastifyInstance } from 'fastify';
import { noQuery } from '../schemas';

export async function regionRoutes(app: FastifyInstance): Promise<void> {
  const { region: ownRegion, healthCacheMs } = app.lbConfig;
  app.get('/v1/regions', { schema: { querystring: noQuery } }, async (_request, reply) => {
    const snap = await app.fleet.get(healthCacheMs);
    const now = app.clock();
    const names = [...new Set([ownRegion, ...snap.regions.keys()])].sort();
    const regions = names.map((name) => {
      const view = snap.regions.get(name);
      const servers = [...snap.servers.values()].filter(
        (s) => s.region === name && s.status === 'active' && app.store.servers.isAlive(s, now),
      );
      return {
        region: name,
        status: view?.status ?? 'active',
        reason: view?.reason ?? '',
        apiUrl: name === ownRegion ? app.lbConfig.publicApiUrl : (view?.summary?.apiUrl ?? null),
        backupApiUrl: (name === ownRegion ? app.lbConfig.backupApiUrl : view?.summary?.backupApiUrl) ?? null,
        liveServers: servers.length,
        load: servers.reduce((sum, s) => sum + s.load, 0),
        capacity: servers.reduce((sum, s) => sum + s.capacity, 0),
        reportedAt: view?.summary?.reportedAt ?? null,
      };
    });
    reply.header('cache-control', 'no-store');
    return { region: ownRegion, regions };
  });
}
