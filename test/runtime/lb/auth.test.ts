import { SignJWT } from 'jose';
import { signJoinToken, signMediaToken, type TokenKey } from '../../../runtime/protocol/tokens';
import {
  join,
  JOIN_KEYS,
  joinToken,
  MEDIA_KEYS,
  mediaServer,
  scanTable,
  startLb,
  type LbHarness,
} from './lbHarness';

let h: LbHarness;
let before: unknown[];

beforeAll(async () => {
  h = await startLb();
  await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
  await h.app.fleet.refresh();
  before = await scanTable(h);
});

afterAll(async () => {
  await h.close();
});

beforeEach(() => {
  h.commands.length = 0;
});

afterEach(async () => {
  // A refused join must not even read the table, let alone write it.
  expect(h.commands).toEqual([]);
  expect(await scanTable(h)).toEqual(before);
});

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A join token signed by jose (independent of ours), naming the LB's key id whatever it is signed with. */
function joinJwt(claims: Record<string, unknown>, key: TokenKey | Uint8Array = JOIN_KEYS.current) {
  const secret = key instanceof Uint8Array ? key : key.key;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: JOIN_KEYS.current.kid })
    .setAudience('mrwebrtc:join')
    .sign(secret);
}

describe('join token attacks', () => {
  it('refuses a join without a token (401, WWW-Authenticate)', async () => {
    const res = await join(h, 'r1', { token: null });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.json().error.code).toBe('token_missing');
  });

  it('refuses an Authorization header that is not a bearer token', async () => {
    const res = await join(h, 'r1', { token: null, headers: { authorization: 'Basic YWxpY2U6cHc=' } });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('token_missing');
  });

  it('refuses an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await joinJwt({ sub: 'alice', room: 'r1', iat: now - 3600, exp: now - 60 });
    const res = await join(h, 'r1', { token });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('token_expired');
  });

  it('refuses a token for another room (403)', async () => {
    const res = await join(h, 'r1', { token: await joinToken('other-room') });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toEqual({
      code: 'token_wrong_scope',
      message: expect.stringContaining('another room'),
    });
  });

  it('refuses a tampered token', async () => {
    const [header, , signature] = (await joinToken('other-room')).split('.');
    const forged = `${header}.${b64url({ sub: 'mallory', room: 'r1', aud: 'mrwebrtc:join', exp: 9_999_999_999 })}.${signature}`;
    const res = await join(h, 'r1', { token: forged });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('token_invalid');
  });

  it('refuses alg "none"', async () => {
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'mallory', room: 'r1', aud: 'mrwebrtc:join', exp: 9_999_999_999 })}.`;
    const res = await join(h, 'r1', { token: unsigned });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('token_invalid');
  });

  it('refuses a token signed with another key', async () => {
    const token = await joinJwt(
      { sub: 'mallory', room: 'r1', exp: 9_999_999_999 },
      new TextEncoder().encode('x'.repeat(40)),
    );
    const res = await join(h, 'r1', { token });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('token_invalid');
  });

  it('refuses a media token replayed as a join token: another key, and another audience', async () => {
    const claims = { peerId: 'p', identity: 'alice', room: 'r1', server: 'eu-a' };
    // Media tokens are signed with the media keys, which the join route does not hold.
    const { token } = await signMediaToken(MEDIA_KEYS, claims);
    const res = await join(h, 'r1', { token });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('token_invalid');
    // Even signed with a join key (say, both secrets set to one value), the audience tells them apart.
    const sameKey = await signMediaToken(JOIN_KEYS, claims);
    const again = await join(h, 'r1', { token: sameKey.token });
    expect(again.statusCode).toBe(403);
    expect(again.json().error.code).toBe('token_wrong_scope');
  });

  it('refuses a join token minted with the media keys (what a media host holds)', async () => {
    const token = await signJoinToken(MEDIA_KEYS, { sub: 'mallory', room: 'r1' });
    const res = await join(h, 'r1', { token });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('token_invalid');
  });

  it('checks the token before the body: an anonymous caller gets 401 whatever it sends', async () => {
    const res = await join(h, 'r1', { token: null, body: { nope: true } });
    expect(res.statusCode).toBe(401);
  });
});

describe('schema violations', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['an unknown top-level field', { rtt: {}, admin: true }, /body has an unknown field "admin"/],
    [
      'an unknown field under exclude',
      { exclude: { servers: ['a'] } },
      /body\.exclude has an unknown field "servers"/,
    ],
    ['an RTT that is not a number', { rtt: { 'us-east-1': '12' } }, /body\.rtt\.us-east-1 must be number/],
    ['a negative RTT', { rtt: { 'us-east-1': -1 } }, /body\.rtt\.us-east-1 must be >= 0/],
    [
      'an RTT key that is not a region',
      { rtt: { 'not a region': 1 } },
      /body\.rtt has an invalid key "not a region"/,
    ],
    [
      'serverIds that is not an array',
      { exclude: { serverIds: 'eu-a' } },
      /body\.exclude\.serverIds must be array/,
    ],
    [
      'too many excluded servers',
      { exclude: { serverIds: Array.from({ length: 17 }, (_, i) => `s${i}`) } },
      /must NOT have more than 16 items/,
    ],
    ['an array body', [1, 2], /body must be object/],
  ];
  it.each(cases)('refuses %s with a 400 naming the field', async (_name, body, message) => {
    const res = await join(h, 'r1', { body });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: { code: 'invalid_request', message: expect.stringMatching(message) },
    });
  });

  it('refuses a room id outside the safe alphabet', async () => {
    const room = 'a%20b';
    const res = await h.app.inject({
      method: 'POST',
      url: `/v1/rooms/${room}/join`,
      headers: { authorization: `Bearer ${await joinToken('a b')}` },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/params\.roomId must match pattern/);
  });

  it('refuses unknown query parameters', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/rooms/r1/join?debug=1',
      headers: { authorization: `Bearer ${await joinToken('r1')}` },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/querystring has an unknown field "debug"/);
  });

  it('refuses invalid JSON, other media types and oversized bodies', async () => {
    const headers = { authorization: `Bearer ${await joinToken('r1')}` };
    const bad = await h.app.inject({
      method: 'POST',
      url: '/v1/rooms/r1/join',
      headers: { ...headers, 'content-type': 'application/json' },
      payload: '{"rtt":',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('invalid_json');
    const text = await h.app.inject({
      method: 'POST',
      url: '/v1/rooms/r1/join',
      headers: { ...headers, 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe('unsupported_media_type');
    const big = await h.app.inject({
      method: 'POST',
      url: '/v1/rooms/r1/join',
      headers: { ...headers, 'content-type': 'application/json' },
      payload: JSON.stringify({ rtt: {}, pad: 'x'.repeat(20_000) }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('body_too_large');
  });
});
