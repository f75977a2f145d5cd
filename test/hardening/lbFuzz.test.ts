/**
 * Property-based fuzzing of every LB route through `app.inject()` against a real dynalite, plus the
 * signaling route's upgrade preconditions over a real socket. Every hostile case must get a 4xx with the
 * `{ error: { code, message } }` body, within a bound, and must not write the table (checked per case
 * on the app's own DynamoDB command log and once per property on a full table scan).
 *
 * Route-level examples (each attack named) live in test/runtime/lb/auth.test.ts and ops.test.ts; this
 * file throws volume and variety at the same doors.
 */
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { signJoinToken, signMediaToken } from '../../runtime/protocol/tokens';
import { signalingSubprotocols } from '../../runtime/protocol/subprotocol';
import {
  join,
  joinToken,
  mediaServer,
  scanTable,
  startLb,
  T0,
  JOIN_KEYS,
  MEDIA_KEYS,
  type LbHarness,
} from '../runtime/lb/lbHarness';
import {
  CASE_TIMEOUT_MS,
  checkProperty,
  hostileJson,
  hostileString,
  mutatedObject,
  percentEncode,
  within,
} from './hostile';

jest.setTimeout(120_000);

/** The one room placed before the properties run: a valid join for it answers without writing. */
const PLACED_ROOM = 'placed-room';
const WRITE_COMMANDS = /Put|Update|Delete|Write/;
const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const;

let h: LbHarness;
let tableBefore: unknown[];
let validToken: string;
/** A token a `Sec-WebSocket-Protocol` header can carry (visible ASCII, no list separator). */
const HEADER_SAFE = /^[\x21-\x2b\x2d-\x7e]+$/;

beforeAll(async () => {
  h = await startLb({
    config: {
      // The limiter is the subject of limits.test.ts; here it would turn every case into a 429.
      limits: { requestsPerMinute: 1e9, joinsPerMinute: 1e9, healthProbesPerMinute: 1e9 },
    },
  });
  await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
  await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
  await h.admin.regions.putSummary({
    region: 'us-east-1',
    apiUrl: 'http://127.0.1.1:8080',
    liveServers: 1,
    load: 0,
    capacity: 100,
    reportedAt: T0,
  });
  await h.app.fleet.refresh();
  expect((await join(h, PLACED_ROOM)).statusCode).toBe(200);
  validToken = await joinToken(PLACED_ROOM);
  tableBefore = await scanTable(h);
});

afterAll(async () => {
  await h?.close();
});

beforeEach(() => {
  h.commands.length = 0;
});

afterEach(async () => {
  expect(await scanTable(h)).toEqual(tableBefore);
});

async function send(opts: InjectOptions): Promise<LightMyRequestResponse> {
  h.commands.length = 0;
  return within(CASE_TIMEOUT_MS, `${String(opts.method)} ${String(opts.url)}`, h.app.inject(opts));
}

/** A 4xx whose body is exactly `{ error: { code, message } }` with strings; nothing written. */
function expectClientError(res: LightMyRequestResponse, what: string, method?: string): void {
  if (res.statusCode < 400 || res.statusCode > 499) {
    throw new Error(`${what}: expected a 4xx, got ${res.statusCode} ${res.body.slice(0, 300)}`);
  }
  expectErrorBody(res, what, method);
  expectNoWrites(what);
}

function expectErrorBody(res: LightMyRequestResponse, what: string, method?: string): void {
  // A HEAD answer has the GET's headers and no body.
  if (method === 'HEAD') return;
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    throw new Error(`${what}: ${res.statusCode} with a body that is not JSON: ${res.body.slice(0, 200)}`);
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
  const shapeOk =
    typeof body === 'object' &&
    body !== null &&
    Object.keys(body).length === 1 &&
    typeof error?.code === 'string' &&
    typeof error.message === 'string' &&
    Object.keys(error).length === 2;
  if (!shapeOk)
    throw new Error(`${what}: error body is not { error: { code, message } }: ${res.body.slice(0, 300)}`);
  if (!String(res.headers['content-type']).startsWith('application/json')) {
    throw new Error(`${what}: error with content-type ${String(res.headers['content-type'])}`);
  }
}

function expectNoWrites(what: string): void {
  const writes = h.commands.filter((c) => WRITE_COMMANDS.test(c));
  if (writes.length > 0) throw new Error(`${what}: the table was written (${writes.join(', ')})`);
}

// ---- inputs ----------------------------------------------------------------------------------------

const regionName = fc.constantFrom('us-east-1', 'ap-southeast-1', 'sa-east-1', 'eu-central-2');

/** A join body shaped like the schema, with any part of it hostile. */
const joinBodyText: fc.Arbitrary<string> = mutatedObject({
  rtt: fc
    .dictionary(regionName, fc.integer({ min: 0, max: 60_000 }), { maxKeys: 3 })
    .map((rtt) => JSON.stringify(rtt)),
  exclude: mutatedObject({
    // Never the live server or region: a valid exclusion of them is a legitimate 503 no_capacity.
    serverIds: fc
      .array(fc.stringMatching(/^gone-[a-z0-9]{1,8}$/), { maxLength: 3 })
      .map((a) => JSON.stringify(a)),
    regions: fc.array(regionName, { maxLength: 3 }).map((a) => JSON.stringify(a)),
  }),
});

/** Tokens that must never verify: junk, JWT-shaped junk, and real tokens cut or re-glued. */
const badToken = (): fc.Arbitrary<string> =>
  fc.oneof(
    hostileString,
    fc
      .array(
        fc.base64String({ maxLength: 60 }).map((s) => s.replace(/=+$/, '')),
        { minLength: 3, maxLength: 3 },
      )
      .map((parts) => parts.join('.')),
    fc.nat(validToken.length - 1).map((cut) => validToken.slice(0, cut)),
    fc.constantFrom(
      `${validToken}x`,
      validToken.split('.').reverse().join('.'),
      `${validToken.split('.').slice(0, 2).join('.')}.`,
    ),
  );

const authorizationHeader = (): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    fc.constant(undefined),
    badToken().map((t) => `Bearer ${t}`),
    fc
      .tuple(fc.constantFrom('Basic', 'bearer', 'Token', '', 'Bearer\t'), badToken())
      .map(([s, t]) => `${s} ${t}`),
  );

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  '',
  ';;;',
);

/** Header values a client may put on the wire (no CR/LF, which inject itself refuses). */
const headerValue = fc.string({ unit: 'binary-ascii', maxLength: 60 }).map((s) => s.replace(/[\r\n\0]/g, ''));

const extraHeaders: fc.Arbitrary<Record<string, string>> = fc.dictionary(
  fc.oneof(
    fc.constantFrom(
      'x-forwarded-for',
      'origin',
      'connection',
      'upgrade',
      'accept-encoding',
      'content-encoding',
      'expect',
      'x-region',
      'cookie',
    ),
    fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
  ),
  headerValue,
  { maxKeys: 4 },
);

/** URL paths with invalid percent-escapes, encoded lone surrogates, dot segments and long runs. */
const hostilePath: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.webSegment(),
      fc.constantFrom(
        '%',
        '%Z',
        '%E0%A4%A',
        '%ED%A0%80',
        '%00',
        '%2F',
        '..',
        '.',
        '%C0%AF',
        '%FF',
        '~',
        ';x=1',
      ),
      hostileString.map(percentEncode),
    ),
    { maxLength: 6 },
  )
  .map((segments) => `/${segments.join('/')}`);

const hostileQuery: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom('t', 'token', '__proto__', 'constructor', 'x'), fc.webSegment()),
        fc.webSegment(),
      ),
      {
        minLength: 1,
        maxLength: 3,
      },
    )
    .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
  fc.constantFrom(
    '?',
    '?&&',
    '?t',
    '?t=%',
    '?t=1&t=2',
    '?t=' + 'x'.repeat(40),
    '?token[a]=1',
    '?__proto__[x]=1',
  ),
);

// ---- join ------------------------------------------------------------------------------------------

describe('POST /v1/rooms/:roomId/join', () => {
  test('without a verifiable token, any body, header or room id gets a 4xx and reads nothing', async () => {
    await checkProperty(
      'lb join (no valid token)',
      fc.asyncProperty(
        authorizationHeader(),
        fc.option(fc.oneof(hostileJson, joinBodyText)),
        fc.option(contentType),
        extraHeaders,
        fc.oneof(fc.constant(PLACED_ROOM), fc.webSegment(), fc.constantFrom('%00', '%ZZ', 'a'.repeat(300))),
        async (authorization, body, type, headers, room) => {
          const res = await send({
            method: 'POST',
            url: `/v1/rooms/${room}/join`,
            headers: {
              ...headers,
              ...(authorization !== undefined ? { authorization } : {}),
              ...(type !== null ? { 'content-type': type } : {}),
            },
            ...(body !== null ? { payload: body } : {}),
          });
          expectClientError(res, 'join without a valid token');
          if (h.commands.length > 0)
            throw new Error(`an anonymous join read the table: ${h.commands.join(', ')}`);
        },
      ),
    );
  });

  test('with a valid token, a hostile body gets a 4xx and writes nothing; a valid one is answered', async () => {
    await checkProperty(
      'lb join (hostile body)',
      fc.asyncProperty(
        fc.oneof(joinBodyText, hostileJson),
        fc.option(contentType, { freq: 4 }),
        async (body, type) => {
          const res = await send({
            method: 'POST',
            url: `/v1/rooms/${PLACED_ROOM}/join`,
            headers: { authorization: `Bearer ${validToken}`, 'content-type': type ?? 'application/json' },
            payload: body,
          });
          if (res.statusCode === 200) {
            // Only a body the schema accepts gets here, and the placed room is answered without a write.
            expect(res.json()).toMatchObject({ room: PLACED_ROOM, serverId: 'eu-a' });
            expectNoWrites('valid join of a placed room');
            return;
          }
          expectClientError(res, `join with body ${body.slice(0, 100)}`);
        },
      ),
    );
  });

  test('a token for one room never opens another, whatever the path says', async () => {
    const tokenRoom = fc.oneof(fc.stringMatching(/^[a-z0-9]{1,8}$/), hostileString);
    await checkProperty(
      'lb join (room mismatch)',
      fc.asyncProperty(tokenRoom, hostilePath, async (room, path) => {
        fc.pre(safeDecode(path.slice(1)) !== room);
        const token = await signJoinToken(JOIN_KEYS, { sub: 'mallory', room: room || 'x' });
        const url = `/v1/rooms${path}/join`;
        const res = await send({ method: 'POST', url, headers: { authorization: `Bearer ${token}` } });
        expectClientError(res, `join ${url} with a token for ${JSON.stringify(room).slice(0, 60)}`);
      }),
    );
  });
});

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

// ---- the other routes ------------------------------------------------------------------------------

describe('GET /health, /v1/regions, /v1/ping, /metrics', () => {
  test('answer 200 to a clean request and a 4xx to any other query or method, never a 5xx', async () => {
    await checkProperty(
      'lb ops routes',
      fc.asyncProperty(
        fc.constantFrom('/health', '/v1/regions', '/v1/ping', '/metrics'),
        fc.constantFrom(...HTTP_METHODS),
        hostileQuery,
        extraHeaders,
        async (route, method, query, headers) => {
          const res = await send({ method, url: `${route}${query}`, headers });
          const read = method === 'GET' || method === 'HEAD';
          // `t` is the ping's cache buster; whether a given escape decodes within its 32 characters is
          // fastify's business, so a ping with only `t` may be a 200 or a 400.
          const onlyT = route === '/v1/ping' && [...new URLSearchParams(query)].every(([k]) => k === 't');
          const noQuery = [...new URLSearchParams(query)].length === 0;
          if (res.statusCode === 200 && read && (noQuery || onlyT)) return;
          expectClientError(res, `${method} ${route}${query}`, method);
        },
      ),
    );
  });

  test('unknown routes, bad percent-escapes and odd methods get a JSON 4xx', async () => {
    await checkProperty(
      'lb unknown routes',
      fc.asyncProperty(
        fc.constantFrom(...HTTP_METHODS),
        hostilePath,
        hostileQuery,
        async (method, path, query) => {
          const url = `${path}${query}`;
          if (/^\/(health|metrics|v1\/(ping|regions))\/?$/.test(path)) return;
          const res = await send({ method, url });
          expectClientError(res, `${method} ${url}`, method);
        },
      ),
    );
  });
});

// ---- signaling edge --------------------------------------------------------------------------------

describe('GET /v1/rooms/:roomId/signal', () => {
  let mediaTokens: string[];

  beforeAll(async () => {
    const mint = (room: string, server: string) =>
      signMediaToken(MEDIA_KEYS, { peerId: 'p', identity: 'i', room, server }).then((t) => t.token);
    // Valid signatures, wrong everything else: another room, another region's server, no such server.
    mediaTokens = await Promise.all([
      mint('other-room', 'eu-a'),
      mint(PLACED_ROOM, 'us-a'),
      mint(PLACED_ROOM, 'ghost'),
    ]);
  });

  test('refuses every token that does not name this room and a server of this region, before any upgrade', async () => {
    await checkProperty(
      'lb signal (inject)',
      fc.asyncProperty(
        fc.oneof(badToken(), fc.constantFrom(...mediaTokens), fc.constant(validToken)),
        fc.boolean(),
        hostileQuery,
        async (token, upgrade, extraQuery) => {
          // Where a client should put it (a subprotocol) when a header can carry it; in the URL otherwise.
          const inHeader = HEADER_SAFE.test(token);
          const query = inHeader
            ? extraQuery
            : `?token=${percentEncode(token)}${extraQuery.replace(/^\?/, '&')}`;
          const res = await send({
            method: 'GET',
            url: `/v1/rooms/${PLACED_ROOM}/signal${query}`,
            headers: {
              ...(upgrade
                ? { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13' }
                : {}),
              ...(inHeader ? { 'sec-websocket-protocol': signalingSubprotocols(token).join(', ') } : {}),
            },
          });
          expectClientError(res, `signal with token ${token.slice(0, 60)}`);
          if (res.statusCode === 426) throw new Error('an unverified token reached the upgrade');
        },
      ),
    );
  });

  test('over a real socket, a hostile upgrade request gets an HTTP 4xx and never a 101', async () => {
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (h.app.server.address() as AddressInfo).port;
    const upgradeHeaders = fc.record({
      key: fc.oneof(fc.constant('dGhlIHNhbXBsZSBub25jZQ=='), headerValue),
      version: fc.oneof(fc.constant('13'), headerValue),
      protocol: fc.option(headerValue),
    });
    await checkProperty(
      'lb signal (upgrade over a socket)',
      fc.asyncProperty(
        fc.oneof(badToken(), fc.constantFrom(...mediaTokens)),
        upgradeHeaders,
        fc.boolean(),
        async (token, headers, inUrl) => {
          const asProtocol = !inUrl && HEADER_SAFE.test(token);
          const protocol = asProtocol ? signalingSubprotocols(token).join(', ') : headers.protocol;
          const lines = [
            `GET /v1/rooms/${PLACED_ROOM}/signal${asProtocol ? '' : `?token=${percentEncode(token)}`} HTTP/1.1`,
            `Host: 127.0.0.1:${port}`,
            'Connection: Upgrade',
            'Upgrade: websocket',
            `Sec-WebSocket-Key: ${headers.key}`,
            `Sec-WebSocket-Version: ${headers.version}`,
            ...(protocol !== null ? [`Sec-WebSocket-Protocol: ${protocol}`] : []),
          ];
          const { status, body } = await within(
            CASE_TIMEOUT_MS,
            'raw upgrade',
            rawRequest(port, Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')),
          );
          if (status < 400 || status > 499 || !isErrorBody(body))
            throw new Error(`upgrade with token ${token.slice(0, 40)} answered ${status} ${body}`);
          expectNoWrites('raw upgrade');
        },
      ),
    );
  });
});

/** Sends a raw HTTP request and resolves with the status and body of the answer. */
function rawRequest(port: number, request: string | Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let received = Buffer.alloc(0);
    const tryParse = (): boolean => {
      const text = received.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (end < 0 || !status) return false;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      const body = received.subarray(end + 4);
      if (body.length < length) return false;
      socket.destroy();
      resolve({ status: Number(status[1]), body: body.subarray(0, length).toString('utf8') });
      return true;
    };
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      tryParse();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      if (!tryParse())
        reject(new Error(`closed without a whole answer: ${received.toString('latin1').slice(0, 100)}`));
    });
  });
}

/** `{ error: { code, message } }` and nothing else. */
function isErrorBody(text: string): boolean {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    return (
      Object.keys(body).length === 1 &&
      typeof body.error?.code === 'string' &&
      typeof body.error.message === 'string'
    );
  } catch {
    return false;
  }
}

describe('regressions', () => {
  // Found by the properties above: the router's and Node's own 400s bypassed the error handler and
  // answered fastify's default body, not the API's `{ error: { code, message } }`.
  test('an undecodable percent-escape in the path is a 400 in the API error shape', async () => {
    const res = await send({ method: 'GET', url: '/v1/rooms/%E0%A4%A/join' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: { code: 'bad_url', message: expect.stringContaining('not a valid url') },
    });
  });

  test('a request Node cannot parse is a 400 in the API error shape, and the server goes on', async () => {
    await h.app.listen({ host: '127.0.0.1', port: 0 }).catch(() => undefined);
    const port = (h.app.server.address() as AddressInfo).port;
    const bad = await rawRequest(port, 'GET /v1/ping HTTP/1.1\r\nHost: x\r\nBad\u0001Header: y\r\n\r\n');
    expect(bad).toEqual({
      status: 400,
      body: JSON.stringify({ error: { code: 'bad_request', message: 'the request is not valid HTTP' } }),
    });
    expect((await rawRequest(port, 'GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n')).status).toBe(200);
    const huge = await rawRequest(
      port,
      `GET /v1/ping HTTP/1.1\r\nHost: x\r\nX-Pad: ${'x'.repeat(20_000)}\r\n\r\n`,
    );
    expect(huge).toEqual({
      status: 431,
      body: JSON.stringify({
        error: { code: 'headers_too_large', message: 'the request headers are too large' },
      }),
    });
  });
});
