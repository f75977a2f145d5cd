/**
 * JSON schemas of the public routes. Every object is closed (`additionalProperties: false`) and the app
 * runs Ajv without `removeAdditional` or type coercion, so an unknown field or a wrong type is a 400,
 * never silently dropped or converted.
 */

/** Room ids travel in URLs, tokens, logs and DynamoDB keys: keep them to a safe alphabet. */
export const ROOM_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$';
const REGION_PATTERN = '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$';
/** More regions than AWS has; bounds the work a body can cause. */
const MAX_REGIONS = 40;

export const roomParams = {
  type: 'object',
  additionalProperties: false,
  required: ['roomId'],
  properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN } },
} as const;

export const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;

export interface JoinBody {
  rtt?: Record<string, number>;
  exclude?: { serverIds?: string[]; regions?: string[] };
}

export const joinBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** Client-measured round-trip times to regions' `/v1/ping`, ms. */
    rtt: {
      type: 'object',
      maxProperties: MAX_REGIONS,
      propertyNames: { pattern: REGION_PATTERN },
      additionalProperties: { type: 'number', minimum: 0, maximum: 60_000 },
    },
    /** What a rejoining client saw fail. */
    exclude: {
      type: 'object',
      additionalProperties: false,
      properties: {
        serverIds: { type: 'array', maxItems: 16, items: { type: 'string', minLength: 1, maxLength: 128 } },
        regions: { type: 'array', maxItems: MAX_REGIONS, items: { type: 'string', pattern: REGION_PATTERN } },
      },
    },
  },
} as const;

export const joinAnswer = {
  type: 'object',
  required: ['room', 'region', 'serverId', 'signalingUrl', 'mediaToken', 'alternates', 'expiresAt'],
  properties: {
    room: { type: 'string' },
    region: { type: 'string' },
    serverId: { type: 'string' },
    signalingUrl: { type: 'string' },
    mediaToken: { type: 'string' },
    alternates: {
      type: 'array',
      items: {
        type: 'object',
        required: ['region', 'apiUrl'],
        properties: { region: { type: 'string' }, apiUrl: { type: 'string' } },
      },
    },
    /** Epoch ms after which the media token no longer opens the signaling socket. */
    expiresAt: { type: 'integer' },
  },
} as const;

/** RTT probes may add a cache-busting `t`; nothing else. */
export const pingQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { t: { type: 'string', maxLength: 32 } },
} as const;
