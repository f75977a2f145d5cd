/**
 * `GET /v1/servers/:serverId/health`: whether one of this region's media servers answers right now.
 * Other regions' LBs ask it when a client claims this region's server failed (ServerProbe): they have
 * no route into this region's network, this LB does. Public like `/health`, and as cheap: the answer
 * is the probe's, shared for a second by every caller, so it cannot be used to flood a media server.
 */
import type { FastifyInstance } from 'fastify';
import { SERVER_ID_PATTERN } from '../../protocol/ids';
import { ApiError } from '../apiError';
import { noQuery } from '../schemas';

const serverParams = {
  type: 'object',
  additionalProperties: false,
  required: ['serverId'],
  properties: { serverId: { type: 'string', pattern: SERVER_ID_PATTERN } },
} as const;

export async function serverRoutes(app: FastifyInstance): Promise<void> {
  const { region } = app.lbConfig;
  app.get<{ Params: { serverId: string } }>(
    '/v1/servers/:serverId/health',
    { schema: { params: serverParams, querystring: noQuery } },
    async (request, reply) => {
      const { serverId } = request.params;
      const server = app.fleet.current()?.servers.get(serverId) ?? (await app.store.servers.get(serverId));
      if (!server || server.region !== region) {
        throw new ApiError(
          404,
          'server_not_found',
          `media server "${serverId}" is not a server of ${region}`,
        );
      }
      const probe = await app.serverProbe.check(server);
      const alive = probe.verdict === 'alive';
      reply.code(alive ? 200 : 503).header('cache-control', 'no-store');
      return { serverId, region, alive, detail: probe.detail };
    },
  );
}
