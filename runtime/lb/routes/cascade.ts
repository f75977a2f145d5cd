/**
 * `GET /v1/rooms/:roomId/cascade` (WebSocket): cascading's control channel between two legs of a room
 * (DESIGN "Cascading"). Another region's media server asks for this region's leg; its cascade token
 * (signed with the media keys, its own audience) comes as a WebSocket subprotocol like a media token,
 * is checked before the upgrade, and names the media server asked, which must be a server of this
 * region. The socket is relayed to that server's private endpoint as signaling is: media hosts expose
 * no control port of their own, and the same TLS edge carries both.
 */
import type { FastifyInstance } from 'fastify';
import { MAX_CASCADE_FRAME_BYTES } from '../../protocol/pipes';
import { tokenFromSubprotocols } from '../../protocol/subprotocol';
import { verifyCascadeToken } from '../../protocol/tokens';
import type { MediaServerRecord } from '../../store';
import { ApiError } from '../apiError';
import { SignalingRelay } from '../SignalingRelay';
import { ownRegionServer } from './ownServer';
import { noQuery, roomParams } from '../schemas';

/**
 * Heartbeats (four a second each way) plus a burst of producer messages when a room's pipe opens:
 * far above a client's signaling rate, bounded all the same.
 */
const CASCADE_MESSAGES_PER_SECOND = 200;
const CASCADE_MESSAGE_BURST = 400;

interface CascadeRequest {
  Params: { roomId: string };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the cascade route's preValidation once the token is verified; else null. */
    cascadeTarget: { readonly server: MediaServerRecord; readonly token: string } | null;
  }
}

/** The media server's cascade URL behind the relay: `<endpoint>/v1/rooms/<room>/cascade?token=…`. */
export function upstreamCascadeUrl(endpoint: string, roomId: string, token: string): string {
  const url = new URL(endpoint);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/rooms/${encodeURIComponent(roomId)}/cascade`;
  url.search = `?token=${encodeURIComponent(token)}`;
  return url.toString();
}

export async function cascadeRoutes(app: FastifyInstance): Promise<void> {
  const { mediaTokenKeys, limits } = app.lbConfig;
  app.decorateRequest('cascadeTarget', null);

  app.route<CascadeRequest>({
    method: 'GET',
    url: '/v1/rooms/:roomId/cascade',
    schema: { params: roomParams, querystring: noQuery },
    preValidation: async (request) => {
      const token = tokenFromSubprotocols(request.headers['sec-websocket-protocol']);
      const claims = await verifyCascadeToken(mediaTokenKeys, token, { roomId: request.params.roomId });
      const server = await ownRegionServer(app, claims.server, "that region's LB");
      request.cascadeTarget = { server, token: token! };
    },
    handler: async () => {
      throw new ApiError(426, 'upgrade_required', 'this endpoint speaks WebSocket only');
    },
    wsHandler: (socket, request) => {
      const { server, token } = request.cascadeTarget!;
      const relay = new SignalingRelay({
        client: socket,
        upstreamUrl: upstreamCascadeUrl(server.endpoint, request.params.roomId, token),
        upstreamHeaders: { 'x-forwarded-for': request.ip },
        maxPayloadBytes: MAX_CASCADE_FRAME_BYTES,
        messagesPerSecond: CASCADE_MESSAGES_PER_SECOND,
        messageBurst: CASCADE_MESSAGE_BURST,
        keepaliveMs: limits.relayKeepaliveMs,
        pendingFrames: limits.relayPendingFrames,
        connectTimeoutMs: limits.relayConnectTimeoutMs,
      });
      app.relayRegistry.track(relay);
      const log = request.log.child({ room: request.params.roomId, server: server.id, cascade: true });
      log.debug('cascade relay opened');
      relay.once('close', (reason, detail) => {
        app.relayRegistry.untrack(relay);
        log.debug({ reason }, `cascade relay closed: ${detail}`);
      });
    },
  });
}
