/**
 * The media server a relayed WebSocket (signaling or cascade) is for: known to this LB (the fleet view,
 * else the table) and in this LB's own region, since an LB relays only to its region's private
 * endpoints. 404 for an unknown server, 403 for another region's, with where to go instead.
 */
import type { FastifyInstance } from 'fastify';
import type { MediaServerRecord } from '../../store';
import { ApiError } from '../apiError';

export async function ownRegionServer(
  app: FastifyInstance,
  serverId: string,
  /** Where a client of another region's server should connect instead. */
  elsewhere: string,
): Promise<MediaServerRecord> {
  const server = app.fleet.current()?.servers.get(serverId) ?? (await app.store.servers.get(serverId));
  if (!server) throw new ApiError(404, 'server_not_found', `media server "${serverId}" is not registered`);
  if (server.region !== app.lbConfig.region) {
    throw new ApiError(
      403,
      'wrong_region',
      `media server "${server.id}" is in ${server.region}; connect through ${elsewhere}`,
    );
  }
  return server;
}
