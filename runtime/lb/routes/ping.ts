/**
 * `GET /v1/ping`: the RTT probe. No I/O and a tiny body (the region, which `x-region` also names, as on
 * every answer: app.ts), so what a client measures is the network path to this region and not our
 * database.
 */
import type { FastifyInstance } from 'fastify';
import { pingQuery } from '../schemas';

export async function pingRoutes(app: FastifyInstance): Promise<void> {
  const { region } = app.lbConfig;
  const body = JSON.stringify({ region });
  app.get('/v1/ping', { schema: { querystring: pingQuery } }, async (_request, reply) => {
    reply.header('cache-control', 'no-store').type('application/json');
    return body;
  });
}
