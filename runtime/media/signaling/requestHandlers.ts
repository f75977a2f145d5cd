/**
 * What a joined peer may ask for. Each handler resolves ids in the peer's own maps first; an id that
 * belongs to another peer of the room is `forbidden`, one that exists nowhere is `not_found`, and both
 * messages carry the id.
 */
import type { MsConsumer, MsProducer } from '../engine';
import type { Peer, PeerTransport } from '../Peer';
import { ProtocolError, type Method, type RequestData, type ResponseData } from '../../protocol/signaling';
import type { Room } from '../Room';

export interface PeerContext {
  readonly peer: Peer;
  readonly room: Room;
}

type JoinedMethod = Exclude<Method, 'join'>;
type Handler<M extends JoinedMethod> = (ctx: PeerContext, data: RequestData<M>) => Promise<ResponseData[M]>;

export const requestHandlers: { [M in JoinedMethod]: Handler<M> } = {
  async getRouterRtpCapabilities({ room }) {
    return { rtpCapabilities: room.router.rtpCapabilities };
  },

  async createWebRtcTransport({ peer }, { direction }) {
    const transport = await peer.createWebRtcTransport(direction);
    return {
      id: transport.id,
      iceParameters: transport.iceParameters,
      iceCandidates: transport.iceCandidates,
      dtlsParameters: transport.dtlsParameters,
    };
  },

  async connectWebRtcTransport(ctx, { transportId, dtlsParameters }) {
    await ctx.peer.connectTransport(ownTransport(ctx, transportId), dtlsParameters);
    return {};
  },

  async restartIce(ctx, { transportId }) {
    return { iceParameters: await ownTransport(ctx, transportId).transport.restartIce() };
  },

  async produce(ctx, { transportId, kind, rtpParameters, appData }) {
    const producer = await ctx.peer.produce(ownTransport(ctx, transportId), kind, rtpParameters, {
      ...appData,
    });
    return { producerId: producer.id };
  },

  async setProducerPaused(ctx, { producerId, paused }) {
    await ctx.peer.setProducerPaused(ownProducer(ctx, producerId), paused);
    return {};
  },

  async closeProducer(ctx, { producerId }) {
    ownProducer(ctx, producerId);
    ctx.peer.closeProducer(producerId);
    return {};
  },

  async listProducers({ room, peer }) {
    return { producers: room.listProducers().filter((p) => p.peerId !== peer.id) };
  },

  async consume(ctx, { transportId, producerId, rtpCapabilities }) {
    const transport = ownTransport(ctx, transportId);
    const found = ctx.room.findProducer(producerId);
    if (!found) throw new ProtocolError('not_found', `producer "${producerId}" not found`);
    const consumer = await ctx.peer.consume(transport, found, rtpCapabilities);
    return {
      consumerId: consumer.id,
      producerId,
      peerId: found.peer.id,
      kind: consumer.kind,
      rtpParameters: consumer.rtpParameters,
    };
  },

  async resumeConsumer(ctx, { consumerId }) {
    await ownConsumer(ctx, consumerId).resume();
    return {};
  },

  async leave({ peer }) {
    peer.close('left');
    return {};
  },

  async ping() {
    return { serverTime: Date.now() };
  },
};

function ownTransport({ peer, room }: PeerContext, id: string): PeerTransport {
  const transport = peer.transports.get(id);
  if (transport) return transport;
  throw missing(room, peer, 'transport', id);
}

function ownProducer({ peer, room }: PeerContext, id: string): MsProducer {
  const producer = peer.producers.get(id);
  if (producer) return producer;
  throw missing(room, peer, 'producer', id);
}

function ownConsumer({ peer, room }: PeerContext, id: string): MsConsumer {
  const consumer = peer.consumers.get(id);
  if (consumer) return consumer;
  throw missing(room, peer, 'consumer', id);
}

function missing(
  room: Room,
  peer: Peer,
  kind: 'transport' | 'producer' | 'consumer',
  id: string,
): ProtocolError {
  const owner = room.ownerOf(kind, id);
  if (owner && owner !== peer)
    return new ProtocolError('forbidden', `${kind} "${id}" belongs to another peer`);
  return new ProtocolError('not_found', `${kind} "${id}" not found`);
}
