/**
 * The signaling protocol between a client and a media server, spoken over the WebSocket the region's
 * LB relays. JSON text frames of three shapes:
 *
 *   request       { id, method, data }              client → server
 *   response      { id, ok: true, data }            server → client, one per request
 *                 { id, ok: false, error: { code, message } }
 *   notification  { notification, data }           server → client
 *
 * Requests are validated here (strict objects, bounded strings); mediasoup validates RTP structures
 * deeper and its complaints come back as `bad_request`. Control requests are idempotent (`setProducerPaused`
 * with a boolean, never a toggle) so a client may re-send them after a reconnect.
 */
import { z } from 'zod';
import { MAX_IDENTITY_LENGTH, REGION_PATTERN } from './ids';

/** Largest signaling frame either side accepts. SDP-free mediasoup messages stay far below this. */
export const MAX_SIGNALING_FRAME_BYTES = 64 * 1024;
/**
 * Deepest nesting a frame may have. The deepest real message (RTP capabilities: frame, data,
 * rtpCapabilities, codecs, codec, rtcpFeedback, entry) is 7 levels; mediasoup copies structures
 * recursively, so a frame 30,000 levels deep would overflow the stack.
 */
export const MAX_FRAME_DEPTH = 16;

const id = z.string().min(1).max(128);
/** RTP capabilities/parameters and DTLS parameters are mediasoup structures; mediasoup checks them. */
const mediasoupObject = z.record(z.string(), z.unknown());
const appData = z.object({ source: z.enum(['camera', 'mic', 'screen', 'synthetic']).optional() }).strict();

export const requestSchemas = {
  join: z.object({ token: z.string().min(1).max(4096), displayName: z.string().max(64).optional() }).strict(),
  getRouterRtpCapabilities: z.object({}).strict(),
  createWebRtcTransport: z.object({ direction: z.enum(['send', 'recv']) }).strict(),
  connectWebRtcTransport: z.object({ transportId: id, dtlsParameters: mediasoupObject }).strict(),
  restartIce: z.object({ transportId: id }).strict(),
  produce: z
    .object({
      transportId: id,
      kind: z.enum(['audio', 'video']),
      rtpParameters: mediasoupObject,
      appData: appData.optional(),
    })
    .strict(),
  setProducerPaused: z.object({ producerId: id, paused: z.boolean() }).strict(),
  closeProducer: z.object({ producerId: id }).strict(),
  listProducers: z.object({}).strict(),
  consume: z.object({ transportId: id, producerId: id, rtpCapabilities: mediasoupObject }).strict(),
  resumeConsumer: z.object({ consumerId: id }).strict(),
  leave: z.object({}).strict(),
  ping: z.object({}).strict(),
} as const;

export type Method = keyof typeof requestSchemas;
export const METHODS = Object.keys(requestSchemas) as Method[];
export type RequestData<M extends Method> = z.infer<(typeof requestSchemas)[M]>;

/**
 * A producer of another peer, as `newProducer` and `listProducers` carry it. The client parses it with
 * this schema before consuming. Not strict, so a client accepts fields a newer server adds; `identity`
 * and `region` are optional for the same reason the other way round (a media server older than them
 * sends neither), while this server always sends both (`ServerProducerInfo`).
 */
export const producerInfoSchema = z.object({
  producerId: id,
  peerId: id,
  /**
   * The producing peer's identity (its join token's subject): the same participant across rejoins,
   * where its peer id changes with every join.
   */
  identity: z.string().min(1).max(MAX_IDENTITY_LENGTH).optional(),
  /**
   * The region of the leg the producing peer is joined to: this server's region for a peer joined
   * here, the other leg's region for a producer piped in from there (cascading).
   */
  region: z
    .string()
    .regex(new RegExp(REGION_PATTERN), 'must be a region name such as "eu-west-1"')
    .optional(),
  kind: z.enum(['audio', 'video']),
  paused: z.boolean(),
});

export type ProducerInfo = z.infer<typeof producerInfoSchema>;
/** What this media server sends: every field, `identity` and `region` included. */
export type ServerProducerInfo = Required<ProducerInfo>;

/**
 * Why a remote peer left or its producer closed. `leg_lost`: the leg of the room it is joined to (in
 * another region) was cut off from this one (its region or server failed, the pipe went silent or
 * closed), so the peer is most likely rejoining elsewhere and will come back under a new peer id with
 * the same identity. `left` / `closed`: the peer left, or closed that producer, itself.
 */
export type RemoteLeaveReason = 'left' | 'leg_lost';
export type ProducerCloseReason = 'closed' | 'leg_lost';

export interface TransportInfo {
  readonly id: string;
  readonly iceParameters: unknown;
  readonly iceCandidates: unknown[];
  readonly dtlsParameters: unknown;
}

/** What each method answers. */
export interface ResponseData {
  join: { peerId: string; roomId: string; serverId: string; region: string; routerRtpCapabilities: unknown };
  getRouterRtpCapabilities: { rtpCapabilities: unknown };
  createWebRtcTransport: TransportInfo;
  connectWebRtcTransport: Record<string, never>;
  restartIce: { iceParameters: unknown };
  produce: { producerId: string };
  setProducerPaused: Record<string, never>;
  closeProducer: Record<string, never>;
  listProducers: { producers: ServerProducerInfo[] };
  consume: {
    consumerId: string;
    producerId: string;
    peerId: string;
    kind: 'audio' | 'video';
    rtpParameters: unknown;
  };
  resumeConsumer: Record<string, never>;
  leave: Record<string, never>;
  ping: { serverTime: number };
}

export interface Notifications {
  /** `region`: the region of the leg the peer is joined to (see ProducerInfo). */
  peerJoined: { peerId: string; identity: string; region: string };
  peerLeft: { peerId: string; reason: RemoteLeaveReason };
  newProducer: ServerProducerInfo;
  producerClosed: { producerId: string; peerId: string; reason: ProducerCloseReason };
  producerPaused: { producerId: string; paused: boolean };
  consumerClosed: { consumerId: string; producerId: string };
  /** The room moved or this server is going away: join again through the API, excluding this server. */
  rejoin: {
    reason: 'room_moved' | 'server_draining' | 'worker_died' | 'room_closed' | 'region_evacuated';
    serverId: string;
  };
}

export type NotificationName = keyof Notifications;

export type ProtocolErrorCode =
  | 'bad_request'
  | 'unknown_method'
  | 'not_joined'
  | 'already_joined'
  | 'not_found'
  | 'forbidden'
  | 'unauthorized'
  | 'rate_limited'
  | 'server_draining'
  /** The room already holds as many peers as one room may on this server; the join changed nothing. */
  | 'room_full'
  /** A fault of ours; the message is always `internal error`, the detail is in the server's log. */
  | 'internal';

export interface ProtocolErrorBody {
  readonly code: ProtocolErrorCode;
  readonly message: string;
}

export class ProtocolError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export type RequestFrame = { id: number; method: Method; data: unknown };
export type ResponseFrame =
  { id: number; ok: true; data: unknown } | { id: number | null; ok: false; error: ProtocolErrorBody };
export type NotificationFrame<N extends NotificationName = NotificationName> = {
  notification: N;
  data: Notifications[N];
};

const frameSchema = z
  .object({
    id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    method: z.string().max(64),
    data: z.unknown().optional(),
  })
  .strict();

/**
 * Parses one incoming frame into a typed request, or throws a ProtocolError that carries the request
 * id when one could be read (so the client can match the error to its request).
 */
export function parseRequest(raw: string): { id: number; method: Method; data: RequestData<Method> } {
  if (Buffer.byteLength(raw) > MAX_SIGNALING_FRAME_BYTES) {
    throw new ProtocolError('bad_request', `frame exceeds ${MAX_SIGNALING_FRAME_BYTES} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ProtocolError('bad_request', 'frame is not valid JSON');
  }
  const unsafe = unsafeStructure(json);
  if (unsafe) {
    const readableId = (json as { id?: unknown } | null)?.id;
    const err = new ProtocolError('bad_request', unsafe);
    throw Number.isSafeInteger(readableId) && (readableId as number) >= 0
      ? withId(err, readableId as number)
      : err;
  }
  const frame = frameSchema.safeParse(json);
  if (!frame.success)
    throw new ProtocolError('bad_request', `frame must be { id, method, data }: ${firstIssue(frame.error)}`);
  const { id: reqId, method } = frame.data;
  if (!Object.prototype.hasOwnProperty.call(requestSchemas, method)) {
    throw withId(new ProtocolError('unknown_method', `unknown method "${method}"`), reqId);
  }
  const data = requestSchemas[method as Method].safeParse(frame.data.data ?? {});
  if (!data.success)
    throw withId(new ProtocolError('bad_request', `${method}: ${firstIssue(data.error)}`), reqId);
  return { id: reqId, method: method as Method, data: data.data };
}

/**
 * What in a parsed frame must not reach mediasoup, or undefined: nesting beyond MAX_FRAME_DEPTH, a
 * `__proto__` key (an object built from it by assignment gets another prototype), or a string with a
 * lone surrogate (JSON.stringify passes it on as \ud800, which the worker's JSON parser rejects
 * without answering, so the request would hang until the channel times out). Iterative: the input
 * is the attacker's.
 */
function unsafeStructure(json: unknown): string | undefined {
  const stack: Array<{ value: unknown; path: string; depth: number }> = [
    { value: json, path: 'frame', depth: 0 },
  ];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) return `${path} is not well-formed Unicode (it holds a lone surrogate)`;
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_FRAME_DEPTH) return `frame nests deeper than ${MAX_FRAME_DEPTH} levels`;
    for (const [key, child] of Object.entries(value)) {
      const childPath = Array.isArray(value) ? `${path}.${key}` : `${path}.${key.slice(0, 64)}`;
      if (key === '__proto__') return `${path} has a forbidden key "__proto__"`;
      if (LONE_SURROGATE.test(key)) return `${path} has a key that is not well-formed Unicode`;
      stack.push({ value: child, path: childPath, depth: depth + 1 });
    }
  }
  return undefined;
}

/** In `u` mode a surrogate pair is one code point, so only unpaired halves match. */
const LONE_SURROGATE = /\p{Surrogate}/u;

export interface ProtocolErrorWithId extends ProtocolError {
  requestId?: number;
}

function withId(err: ProtocolError, requestId: number): ProtocolErrorWithId {
  return Object.assign(err, { requestId });
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const where = issue.path.length ? issue.path.join('.') : 'data';
  return `${where}: ${issue.message}`;
}

/**
 * Every WebSocket close code of signaling, the media server's and the LB relay's (which passes the
 * media server's through unchanged). A client treats `rejoin` and `unauthorized` as "join again through
 * the API"; `normal` follows its own `leave`; `badGateway` (the edge lost the media server) as "rejoin
 * elsewhere"; `replaced` means another session of the same identity took this one's place, so the
 * client must not rejoin (it would replace that session in turn); `roomFull` follows a `room_full` join
 * refusal.
 */
export const SIGNALING_CLOSE = {
  normal: 1000,
  /** The server (or the LB edge) is shutting down. */
  goingAway: 1001,
  /** Rate limit abuse or a protocol violation that makes the connection unusable. */
  policy: 1008,
  /** A frame larger than MAX_SIGNALING_FRAME_BYTES (sent by the WebSocket library itself). */
  messageTooBig: 1009,
  /** A fault of ours. */
  internal: 1011,
  /** The LB edge lost, or could not reach, the media server behind it. */
  badGateway: 1014,
  /** The server closed this peer's room or is going away; a `rejoin` notification came first. */
  rejoin: 4000,
  /** The join was refused (bad, expired or replayed media token; wrong room or server). */
  unauthorized: 4001,
  /** No successful join within the server's join timeout. */
  joinTimeout: 4002,
  /** A newer session of the same identity joined the room; this one is over (no `rejoin` is sent). */
  replaced: 4003,
  /** The join was refused because the room is full (`room_full`). */
  roomFull: 4004,
} as const;
