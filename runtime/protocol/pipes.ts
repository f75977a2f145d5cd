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
