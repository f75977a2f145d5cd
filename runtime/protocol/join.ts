/**
 * The HTTP join contract: `POST /v1/rooms/:roomId/join` with the app's join token, its body and its
 * answer. One zod schema per message; the LB validates requests and serializes answers with the JSON
 * schemas derived from them (`toJsonSchema`), the client parses answers with the schemas themselves,
 * and both take their types from them, so the two sides cannot drift apart.
 */
import { z } from 'zod';
import { REGION_PATTERN } from './ids';

/** More regions than AWS has; bounds the work a body can cause. */
export const MAX_REGIONS = 40;
/** Servers a rejoining client may name as failed in one join. */
export const MAX_EXCLUDED_SERVERS = 16;
/** Alternates a join answer carries at most (DESIGN.md "Fixed interfaces"). */
export const MAX_ALTERNATES = 3;

const regionName = z.string().regex(new RegExp(REGION_PATTERN));

/** What a rejoining client saw fail: a hint for the LB (it checks), never a command. */
export const joinExclusionsSchema = z.strictObject({
  serverIds: z.array(z.string().min(1).max(128)).max(MAX_EXCLUDED_SERVERS).optional(),
  regions: z.array(regionName).max(MAX_REGIONS).optional(),
});

export const joinRequestSchema = z.strictObject({
  /** Client-measured round-trip times to regions' `/v1/ping`, ms. */
  rtt: z.record(regionName, z.number().min(0).max(60_000)).meta({ maxProperties: MAX_REGIONS }).optional(),
  exclude: joinExclusionsSchema.optional(),
});

export type JoinExclusions = z.infer<typeof joinExclusionsSchema>;
export type JoinRequest = z.infer<typeof joinRequestSchema>;

/** Another region a client may fall back to, in the name family its join came in on. */
export const alternateSchema = z.object({ region: z.string().min(1), apiUrl: z.string().min(1) });

/** One ICE server (`RTCIceServer`): the serving region's TURN relay with a time-limited credential. */
export const iceServerSchema = z.object({
  urls: z.array(z.string().min(1)).min(1),
  username: z.string().optional(),
  credential: z.string().optional(),
});

export const joinAnswerSchema = z.object({
  room: z.string().min(1),
  region: z.string().min(1),
  serverId: z.string().min(1),
  /** The region's signaling WebSocket; the media token is presented as a subprotocol (subprotocol.ts). */
  signalingUrl: z.string().regex(/^wss?:\/\//, 'must be a ws:// or wss:// URL'),
  /**
   * The same region's signaling WebSocket in the other name family (backup when the join came in on a
   * primary name, and the other way round): the client tries it when it cannot connect to
   * `signalingUrl`, before rejoining elsewhere, so one failed zone does not cost a working region.
   */
  fallbackSignalingUrl: z
    .string()
    .regex(/^wss?:\/\//, 'must be a ws:// or wss:// URL')
    .optional(),
  mediaToken: z.string().min(1),
  iceServers: z.array(iceServerSchema).optional(),
  alternates: z.array(alternateSchema).max(MAX_ALTERNATES),
  /** Epoch ms after which the media token no longer opens the signaling socket. */
  expiresAt: z.number().int(),
});

export type Alternate = z.infer<typeof alternateSchema>;
export type IceServer = z.infer<typeof iceServerSchema>;
export type JoinAnswer = z.infer<typeof joinAnswerSchema>;

/**
 * A schema as the JSON schema (draft-07) fastify's Ajv validates and fast-json-stringify serializes
 * with: closed objects stay closed (`additionalProperties: false`), bounds and patterns carry over.
 */
export function toJsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): Record<string, unknown> {
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema, { target: 'draft-7', io }) as Record<
    string,
    unknown
  >;
  return json;
}
