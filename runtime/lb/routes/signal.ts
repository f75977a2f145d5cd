/**
 * `GET /v1/rooms/:roomId/signal` (WebSocket): the signaling edge. The media token comes as a WebSocket
 * subprotocol (runtime/protocol/subprotocol.ts), never in the URL, so no access log ever holds it. It is
 * checked before the upgrade (a refused client gets an HTTP 4xx, never a socket), the relay registry
 * admits it (one session per token, caps per address and identity), then the socket is relayed to the
 * media server named in the token, which must be a server of this region: a token minted for another
 * region's server belongs on that region's edge, and this LB has no route into that region's network.
 */
import type { FastifyInstance } from 'fastify';
import { verifyMediaToken } from '../../protocol/tokens';
import { MAX_SIGNALING_FRAME_BYTES } from '../../protocol/signaling';
import { tokenFromSubprotocols } from '../../protocol/subprotocol';
import type { MediaServerRecord } from '../../store';
import { ApiError } from '../apiError';
import { ownRegionServer } from './ownServer';
import { upstreamSignalingUrl } from '../regionUrls';
import { SignalingRelay } from '../SignalingRelay';
import type { RelayAdmission } from '../RelayRegistry';
import { noQuery, roomParams } from '../schemas';

interface SignalRequest {
  Params: { roomId: string };
}

/** What the upgrade's checks found, for the WebSocket handler (or the 426 answer) to use. */
export interface SignalTarget {
  readonly server: MediaServerRecord;
  readonly token: string;
  readonly admission: RelayAdmission;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the signaling route's preValidation once the token is verified and admitted; else null. */
    signalTarget: SignalTarget | null;
  }
}

export async function signalRoutes(app: FastifyInstance): Promise<void> {
  const { mediaTokenKeys, limits } = app.lbConfig;
  app.decorateRequest('signalTarget', null);

  app.route<SignalRequest>({
    method: 'GET',
    url: '/v1/rooms/:roomId/signal',
    schema: { params: roomParams, querystring: noQuery },
    preValidation: async (request) => {
      if (Object.prototype.hasOwnProperty.call(request.query, 'token')) {
        throw new ApiError(
          400,
          'token_in_url',
          'present the media token as the WebSocket subprotocol "mrwebrtc.token.<token>", never in the URL',
        );
      }
      const token = tokenFromSubprotocols(request.headers['sec-websocket-protocol']);
      const claims = await verifyMediaToken(mediaTokenKeys, token, { roomId: request.params.roomId });
      const server = await ownRegionServer(app, claims.server, "that region's signaling URL");
      const admission = app.relayRegistry.admit(claims, request.ip);
      request.signalTarget = { server, token: token!, admission };
    },
    // A plain GET (no upgrade) is a client mistake worth a clear answer; it spent its token.
    handler: async (request) => {
      if (request.signalTarget) app.relayRegistry.release(request.signalTarget.admission);
      throw new ApiError(
        426,
        'upgrade_required',
        'this endpoint speaks WebSocket only; connect with a WebSocket client',
      );
    },
    wsHandler: (socket, request) => {
      const { server, token, admission } = request.signalTarget!;
      const relay = new SignalingRelay({
        client: socket,
        // The private leg to the media server carries the token in its URL: nothing logs that path.
        upstreamUrl: upstreamSignalingUrl(server.endpoint, request.params.roomId, token),
        upstreamHeaders: { 'x-forwarded-for': request.ip },
        maxPayloadBytes: MAX_SIGNALING_FRAME_BYTES,
        messagesPerSecond: limits.relayMessagesPerSecond,
        messageBurst: limits.relayMessageBurst,
        keepaliveMs: limits.relayKeepaliveMs,
        pendingFrames: limits.relayPendingFrames,
        connectTimeoutMs: limits.relayConnectTimeoutMs,
      });
      app.relayRegistry.track(relay);
      app.metrics.relaysOpen.inc();
      const log = request.log.child({ room: request.params.roomId, server: server.id });
      log.debug('relay opened');
      relay.once('close', (reason, detail) => {
        app.relayRegistry.release(admission, relay);
        app.metrics.relaysOpen.dec();
        app.metrics.relaysClosed.inc({ reason });
        log.debug({ reason }, `relay closed: ${detail}`);
      });
    },
  });
}
