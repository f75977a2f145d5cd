/**
 * `GET /v1/rooms/:roomId/signal?token=<media token>`: the signaling edge. The token is checked before
 * the upgrade (a refused client gets an HTTP 4xx, never a socket), then the socket is relayed to the
 * media server named in the token, which must be a server of this region: a token minted for another
 * region's server belongs on that region's edge, and this LB has no route into that region's network.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { verifyMediaToken } from '../../auth/tokens';
import { MAX_SIGNALING_FRAME_BYTES } from '../../media/protocol';
import type { MediaServerRecord } from '../../store';
import { ApiError } from '../apiError';
import { upstreamSignalingUrl } from '../regionUrls';
import { SignalingRelay } from '../relay';
import { roomParams, signalQuery } from '../schemas';

interface SignalRequest {
  Params: { roomId: string };
  Querystring: { token?: string };
}

const targets = new WeakMap<FastifyRequest, MediaServerRecord>();

export async function signalRoutes(app: FastifyInstance): Promise<void> {
  const { mediaTokenKeys, region, limits } = app.lbConfig;

  async function findServer(id: string): Promise<MediaServerRecord | null> {
    return app.fleet.current()?.servers.get(id) ?? (await app.store.getServer(id));
  }

  app.route<SignalRequest>({
    method: 'GET',
    url: '/v1/rooms/:roomId/signal',
    schema: { params: roomParams, querystring: signalQuery },
    preValidation: async (request) => {
      const claims = await verifyMediaToken(mediaTokenKeys, request.query.token, {
        roomId: request.params.roomId,
      });
      const server = await findServer(claims.server);
      if (!server)
        throw new ApiError(404, 'server_not_found', `media server "${claims.server}" is not registered`);
      if (server.region !== region) {
        throw new ApiError(
          403,
          'wrong_region',
          `media server "${server.id}" is in ${server.region}; connect through that region's signaling URL`,
        );
      }
      targets.set(request, server);
    },
    // A plain GET (no upgrade) is a client mistake worth a clear answer.
    handler: async () => {
      throw new ApiError(
        426,
        'upgrade_required',
        'this endpoint speaks WebSocket only; connect with a WebSocket client',
      );
    },
    wsHandler: (socket, request) => {
      const server = targets.get(request)!;
      const relay = new SignalingRelay(socket, {
        upstreamUrl: upstreamSignalingUrl(server.endpoint, request.params.roomId, request.query.token!),
        upstreamHeaders: { 'x-forwarded-for': request.ip },
        maxPayloadBytes: MAX_SIGNALING_FRAME_BYTES,
        messagesPerSecond: limits.relayMessagesPerSecond,
        messageBurst: limits.relayMessageBurst,
        keepaliveMs: limits.relayKeepaliveMs,
        pendingFrames: limits.relayPendingFrames,
        connectTimeoutMs: limits.relayConnectTimeoutMs,
      });
      app.relays.add(relay);
      app.metrics.relaysOpen.inc();
      const log = request.log.child({ room: request.params.roomId, server: server.id });
      log.debug('relay opened');
      relay.once('close', (reason, detail) => {
        app.relays.delete(relay);
        app.metrics.relaysOpen.dec();
        app.metrics.relaysClosed.inc({ reason });
        log.debug({ reason }, `relay closed: ${detail}`);
      });
    },
  });
}
