/**
 * JSON schemas of the public routes. Every object is closed (`additionalProperties: false`) and the app
 * runs Ajv without `removeAdditional` or type coercion, so an unknown field or a wrong type is a 400,
 * never silently dropped or converted. The join body and answer come from the shared contract
 * (runtime/protocol/join.ts), which the client parses answers with too.
 */
import { joinAnswerSchema, joinRequestSchema, toJsonSchema, type JoinRequest } from '../protocol/join';
import { ROOM_ID_PATTERN } from '../protocol/ids';

export const roomParams = {
  type: 'object',
  additionalProperties: false,
  required: ['roomId'],
  properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN } },
} as const;

export const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;

export type JoinBody = JoinRequest;

export const joinBody = toJsonSchema(joinRequestSchema);

export const joinAnswer = toJsonSchema(joinAnswerSchema, 'output');

/** RTT probes may add a cache-busting `t`; nothing else. */
export const pingQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { t: { type: 'string', maxLength: 32 } },
} as const;
