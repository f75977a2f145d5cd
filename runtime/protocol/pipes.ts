/**
 * What a leg's media server sends another about the pipe between their legs of a room, over the
 * authenticated control channel (through the LBs). PipeLink produces and accepts exactly these shapes;
 * it parses what a remote sends with these schemas before mediasoup sees it. Imports nothing of ours, so
 * it can move to runtime/protocol/ with the other wire contracts unchanged.
 *
 * The SRTP key in a description is a secret: it is sent over TLS only and never logged.
 */
import { z } from 'zod';

const id = z.string().min(1).max(128);
/** RTP parameters are mediasoup structures; mediasoup checks them. */
const mediasoupObject = z.record(z.string(), z.unknown());

/** Where a pipe receives. An IP, not a name: both mediasoup versions connect pipes to addresses only. */
export const pipeEndpointSchema = z
  .object({ ip: z.union([z.ipv4(), z.ipv6()]), port: z.number().int().min(1).max(65_535) })
  .strict();

export const srtpParametersSchema = z
  .object({ cryptoSuite: z.string().min(1).max(64), keyBase64: z.string().min(1).max(256) })
  .strict();

/**
 * One producer as the remote leg needs it to create its pipe producer: the origin producer's id (kept
 * on every leg, so one id names the producer everywhere), its kind, the pipe consumer's RTP parameters
 * (SSRCs of this pipe, RTX included) and whether it is paused now.
 */
export const pipedProducerSchema = z
  .object({
    producerId: id,
    kind: z.enum(['audio', 'video']),
    rtpParameters: mediasoupObject,
    paused: z.boolean(),
  })
  .strict();

/** One side of a pipe: its endpoint, its SRTP keying, and its keepalive stream (see PipeKeepalive). */
export const pipeLinkDescriptionSchema = z
  .object({
    endpoint: pipeEndpointSchema,
    srtpParameters: srtpParametersSchema,
    keepalive: pipedProducerSchema,
  })
  .strict();

export type PipedProducer = z.infer<typeof pipedProducerSchema>;
export type PipeLinkDescription = z.infer<typeof pipeLinkDescriptionSchema>;

/** A producer piped to another leg, with whose it is (a remote peer, for that leg's clients). */
export const cascadeProducerSchema = z
  .object({
    piped: pipedProducerSchema,
    peerId: id,
    identity: z.string().min(1).max(256),
  })
  .strict();

/**
 * The control channel's messages, both ways, one JSON object per WebSocket text frame:
 *   - `pipeOpen`: the asking leg's side of a new pipe; the asked leg answers with its own `pipeOpen`.
 *     Each side connects to the other's description (PipeLink.connect).
 *   - `producers`: every producer of the sender's leg, piped out, once the pipe is connected. It is
 *     the whole set: the receiver closes what it holds from the sender and the set lacks (a healed
 *     partition reconciles here, never duplicating a producer).
 *   - `producerAdded`, `pipePaused`, `pipeClosed`: one producer of the sender's leg came, paused or
 *     resumed, or closed.
 *   - `heartbeat`: sent every CASCADE_HEARTBEAT_MS; a channel silent for CASCADE_DEAD_AFTER_MS is dead.
 *   - `pipeClose`: the sender closes the pipe (its room closed, it is draining, it is full).
 */
export const cascadeMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('pipeOpen'), description: pipeLinkDescriptionSchema }).strict(),
  z.object({ type: z.literal('producers'), producers: z.array(cascadeProducerSchema).max(1_000) }).strict(),
  z.object({ type: z.literal('producerAdded'), producer: cascadeProducerSchema }).strict(),
  z.object({ type: z.literal('pipePaused'), producerId: id, paused: z.boolean() }).strict(),
  z.object({ type: z.literal('pipeClosed'), producerId: id }).strict(),
  z.object({ type: z.literal('heartbeat') }).strict(),
  z.object({ type: z.literal('pipeClose'), reason: z.string().max(200) }).strict(),
]);

/** Heartbeats on the control channel: four per dead window, so one late frame never kills a leg. */
export const CASCADE_HEARTBEAT_MS = 250;
/** A control channel that carried nothing for this long is dead (DESIGN: a dead leg within ~1 s). */
export const CASCADE_DEAD_AFTER_MS = 1_000;
/**
 * A control frame's size limit: signaling's, which the LB relay and the media server's WebSocket
 * server enforce on every frame. A `producers` list of about forty producers fits.
 */
export const MAX_CASCADE_FRAME_BYTES = 64 * 1024;

export type CascadeProducer = z.infer<typeof cascadeProducerSchema>;
export type CascadeMessage = z.infer<typeof cascadeMessageSchema>;
