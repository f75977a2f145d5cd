/**
 * `GET /v1/ping`: the RTT probe. No I/O, a tiny body and `x-region`, so what a client measures is the
 * network path to this region and not our database.
 */
import type { FastifyInstance } from 'fastify';
import { pingQuery } from '../schemas';

export async function pingRoutes(app: FastifyInstance): Promise<void> {
  const { region } = app.lbConfig;
  const body = JSON.stringify({ region });
  app.get('/v1/ping', { schema: { querystring: pingQuery } }, async (_request, reply) => {
    reply.header('x-region', region).header('cache-control', 'no-store').type('application/json');
    return body;
  });
}
