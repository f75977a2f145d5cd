/**
 * Token attacks against all three verifiers: the LB's join route, the LB's signaling edge (checked
 * before the upgrade) and the media server's `join` request (and its own pre-upgrade URL check).
 *
 * Already covered elsewhere, not repeated here:
 *   - join route: no token, non-bearer header, expired, another room, tampered payload, alg "none",
 *     another key, a media token replayed as a join token (test/runtime/lb/auth.test.ts);
 *   - signaling edge: no token, another room, another region's server, an unknown server, extra query
 *     parameters (test/runtime/lb/relay.test.ts);
 *   - media server: garbage, another room, another server, expired, another key, a bad URL token
 *     (test/runtime/media/signaling.test.ts).
 * This file adds: HS/RS confusion both ways, another HMAC algorithm with the right secret, not yet
 * valid (nbf), alg "none" and tampering of media tokens, a join token presented as a media token, and
 * the replay of a media token after its peer left (and while it is still in the room).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { FastifyInstance } from 'fastify';
import { signMediaToken, type KeySet, type TokenKey } from '../../runtime/protocol/tokens';
import { signalingSubprotocols } from '../../runtime/protocol/subprotocol';
import {
  join,
  JOIN_KEYS,
  MEDIA_KEYS,
  mediaServer,
  scanTable,
  startLb,
  type LbHarness,
} from '../runtime/lb/lbHarness';
import {
  MEDIA_KEYS as SERVER_MEDIA_KEYS,
  RawSignaling,
  startInProcessMediaServer,
  type InProcessMediaServer,
} from './mediaHarness';

jest.setTimeout(30_000);

const JOIN_AUDIENCE = 'mrwebrtc:join';
const MEDIA_AUDIENCE = 'mrwebrtc:media';
const ROOM = 'attack-room';
const NOW_S = () => Math.floor(Date.now() / 1000);

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
/** What an attacker who knows the public key would use as the HMAC secret in an RS→HS confusion. */
const publicKeyPem = new TextEncoder().encode(
  rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string,
);

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/**
 * Signs with jose, an implementation independent of ours. Attacks name the attacked key's id
 * (`kid`) even when signed with a foreign key, so each is refused for what it is, not for lacking one.
 */
function sign(
  claims: Record<string, unknown>,
  audience: string,
  key: TokenKey | KeyObject | Uint8Array,
  alg = 'HS256',
  kid?: string,
): Promise<string> {
  const [secret, keyId] = 'kid' in key ? [key.key, key.kid] : [key, kid];
  return new SignJWT(claims)
    .setProtectedHeader({ alg, typ: 'JWT', kid: keyId })
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(NOW_S() + 600)
    .sign(secret);
}

/** Swaps the payload of a genuine token for `claims`, keeping its header and signature. */
function tamper(token: string, claims: Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.');
  const original = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
  return `${header}.${b64url({ ...original, ...claims })}.${signature}`;
}

/**
 * The attacks, each a token factory for a claim set (a join's or a media token's) with its audience and
 * the verifying key, and the error code every verifier must answer with.
 */
function attacks(
  keys: KeySet,
): Array<[string, (claims: Record<string, unknown>, aud: string) => Promise<string>, string]> {
  const key = keys.current;
  return [
    [
      'alg "none"',
      async (c, aud) =>
        `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ ...c, aud, exp: NOW_S() + 600 })}.`,
      'token_invalid',
    ],
    [
      'an RS256 token (RS→HS confusion: an asymmetric token at the HMAC verifier)',
      (c, aud) => sign(c, aud, rsa.privateKey, 'RS256', key.kid),
      'token_invalid',
    ],
    [
      'an HS256 token keyed with the RSA public key (HS→RS confusion)',
      (c, aud) => sign(c, aud, publicKeyPem, 'HS256', key.kid),
      'token_invalid',
    ],
    [
      'HS512 with the right secret (the algorithm is pinned)',
      (c, aud) => sign(c, aud, key, 'HS512'),
      'token_invalid',
    ],
    [
      'a token not valid before a minute from now',
      (c, aud) =>
        new SignJWT(c)
          .setProtectedHeader({ alg: 'HS256', kid: key.kid })
          .setAudience(aud)
          .setIssuedAt()
          .setNotBefore(NOW_S() + 60)
          .setExpirationTime(NOW_S() + 600)
          .sign(key.key),
      'token_not_yet_valid',
    ],
    [
      'an expired token',
      (c, aud) =>
        new SignJWT(c)
          .setProtectedHeader({ alg: 'HS256', kid: key.kid })
          .setAudience(aud)
          .setIssuedAt(NOW_S() - 600)
          .setExpirationTime(NOW_S() - 60)
          .sign(key.key),
      'token_expired',
    ],
    [
      'a genuine token with its claims swapped',
      async (c, aud) => tamper(await sign({ ...c, sub: 'someone-else' }, aud, key), c),
      'token_invalid',
    ],
    [
      'a token without an expiry',
      (c, aud) =>
        new SignJWT(c).setProtectedHeader({ alg: 'HS256', kid: key.kid }).setAudience(aud).sign(key.key),
      'token_invalid',
    ],
  ];
}

// ---- the LB ----------------------------------------------------------------------------------------

describe('LB', () => {
  let h: LbHarness;
  let before: unknown[];

  beforeAll(async () => {
    h = await startLb();
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.app.fleet.refresh();
    before = await scanTable(h);
  });

  afterAll(async () => {
    await h?.close();
  });

  afterEach(async () => {
    expect(await scanTable(h)).toEqual(before);
  });

  test.each(attacks(JOIN_KEYS))('join refuses %s', async (_what, make, code) => {
    const token = await make({ sub: 'mallory', room: ROOM }, JOIN_AUDIENCE);
    h.commands.length = 0;
    const res = await join(h, ROOM, { token });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe(code);
    expect(h.commands).toEqual([]);
  });

  test.each(attacks(MEDIA_KEYS))(
    'the signaling edge refuses %s before the upgrade',
    async (_what, make, code) => {
      const token = await make(
        { sub: 'peer-1', identity: 'mallory', room: ROOM, server: 'eu-a' },
        MEDIA_AUDIENCE,
      );
      expect(await signal(h.app, token)).toEqual({ status: 401, code });
    },
  );

  test('the signaling edge refuses a join token, and a media token whose server claim was swapped', async () => {
    const joinToken = await sign({ sub: 'mallory', room: ROOM }, JOIN_AUDIENCE, MEDIA_KEYS.current);
    expect(await signal(h.app, joinToken)).toEqual({ status: 403, code: 'token_wrong_scope' });
    const { token } = await signMediaToken(MEDIA_KEYS, {
      peerId: 'p',
      identity: 'i',
      room: ROOM,
      server: 'eu-elsewhere',
    });
    expect(await signal(h.app, tamper(token, { server: 'eu-a' }))).toEqual({
      status: 401,
      code: 'token_invalid',
    });
  });
});

async function signal(app: FastifyInstance, token: string): Promise<{ status: number; code: string }> {
  const res = await app.inject({
    method: 'GET',
    url: `/v1/rooms/${ROOM}/signal`,
    headers: {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-protocol': signalingSubprotocols(token).join(', '),
    },
  });
  return { status: res.statusCode, code: res.json().error.code };
}

// ---- the media server ------------------------------------------------------------------------------

describe('media server', () => {
  let media: InProcessMediaServer;
  let requestId = 1;

  beforeAll(async () => {
    media = await startInProcessMediaServer({
      serverId: 'attacked-media',
      rtcMinPort: 22_180,
      rtcMaxPort: 22_199,
    });
  });

  afterAll(async () => {
    await media?.close();
  });

  /** Joins with `token`; resolves with the refusal's code and the socket's close code. */
  async function refusedJoin(token: string): Promise<{ code: string; close: number }> {
    const conn = await RawSignaling.open(media.signalingUrl(ROOM));
    const out = await conn.exchange(JSON.stringify({ id: requestId++, method: 'join', data: { token } }));
    if ('closed' in out) throw new Error(`closed without an answer (${out.closed.code})`);
    if (out.response.ok) throw new Error('the join was accepted');
    return { code: out.response.error.code, close: (await conn.closed).code };
  }

  test.each(attacks(SERVER_MEDIA_KEYS))(
    'join refuses %s (4001), and so does the URL check (401)',
    async (_what, make) => {
      const peers = media.counts().peers;
      const token = await make(
        { sub: `peer-${requestId}`, identity: 'mallory', room: ROOM, server: media.serverId },
        MEDIA_AUDIENCE,
      );
      expect(await refusedJoin(token)).toEqual({ code: 'unauthorized', close: 4001 });
      await expect(RawSignaling.open(`${media.signalingUrl(ROOM)}?token=${token}`)).rejects.toMatchObject({
        statusCode: 401,
      });
      expect(media.counts().peers).toBe(peers);
    },
  );

  test('join refuses a join token in place of a media token', async () => {
    const token = await sign({ sub: 'mallory', room: ROOM }, JOIN_AUDIENCE, SERVER_MEDIA_KEYS.current);
    expect(await refusedJoin(token)).toEqual({ code: 'unauthorized', close: 4001 });
  });

  test('a media token joins once: replayed while its peer is in the room, or after it left, it is refused', async () => {
    const token = await media.mediaToken(ROOM, 'replayed-peer');
    const first = await RawSignaling.open(media.signalingUrl(ROOM));
    await first.request(requestId++, 'join', { token });
    expect(await refusedJoin(token)).toEqual({ code: 'unauthorized', close: 4001 });
    await first.request(requestId++, 'leave', {});
    await first.closed;
    expect(await refusedJoin(token)).toEqual({ code: 'unauthorized', close: 4001 });
    // The socket dropping without a leave is a departure too.
    const other = await media.mediaToken(ROOM, 'vanished-peer');
    const second = await RawSignaling.open(media.signalingUrl(ROOM));
    await second.request(requestId++, 'join', { token: other });
    second.socket.terminate();
    await second.closed;
    expect(await refusedJoin(other)).toEqual({ code: 'unauthorized', close: 4001 });
    expect(media.counts()).toMatchObject({ peers: 0, rooms: 0 });
  });
});
