/**
 * TURN REST credentials: the HMAC is coturn's (HMAC-SHA1 over the username, base64), checked here
 * against a published test vector and against openssl, an implementation independent of Node's; that
 * coturn itself accepts them is shown by real allocations in test/runtime/local/turnRelay.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { createSecretKey, generateKeyPairSync } from 'node:crypto';
import {
  TURN_CREDENTIAL_MAX_TTL_S,
  TURN_CREDENTIAL_MIN_TTL_S,
  TURN_CREDENTIAL_TTL_S,
  turnCredential,
  TurnCredentialError,
  turnIceServers,
  turnPassword,
  turnUrls,
} from '../../../runtime/lb/turnCredentials';

const SECRET = '0123456789abcdef0123456789abcdef';
const NOW_MS = 1_700_000_000_123;

describe('the credential', () => {
  test('matches RFC 2202 HMAC-SHA1 test case 2, base64-encoded as coturn compares it', () => {
    // key "Jefe", data "what do ya want for nothing?" -> effcdf6ae5eb2fa2d27416d5f184df9c259a7c79
    const expected = Buffer.from('effcdf6ae5eb2fa2d27416d5f184df9c259a7c79', 'hex').toString('base64');
    expect(turnPassword('Jefe', 'what do ya want for nothing?')).toBe(expected);
  });

  test('matches openssl for a username of the REST scheme', () => {
    const { username, credential } = turnCredential(SECRET, 'peer-1', { nowMs: NOW_MS });
    const openssl = execFileSync('openssl', ['dgst', '-sha1', '-hmac', SECRET, '-binary'], {
      input: username,
    }).toString('base64');
    expect(credential).toBe(openssl);
  });

  test('is "<expiry in unix seconds>:<peer id>", expiring after the default lifetime', () => {
    const cred = turnCredential(SECRET, 'peer-1', { nowMs: NOW_MS });
    const expiry = Math.floor(NOW_MS / 1000) + TURN_CREDENTIAL_TTL_S;
    expect(cred.username).toBe(`${expiry}:peer-1`);
    expect(cred.expiresAt).toBe(expiry * 1000);
    expect(TURN_CREDENTIAL_TTL_S).toBeGreaterThanOrEqual(TURN_CREDENTIAL_MIN_TTL_S);
    expect(TURN_CREDENTIAL_TTL_S).toBeLessThanOrEqual(TURN_CREDENTIAL_MAX_TTL_S);
  });

  test('is the same from the secret string and from its bytes as a key', () => {
    const key = createSecretKey(Buffer.from(SECRET, 'utf8'));
    expect(turnCredential(key, 'p', { nowMs: NOW_MS })).toEqual(
      turnCredential(SECRET, 'p', { nowMs: NOW_MS }),
    );
  });

  test('differs per peer, per expiry and per secret', () => {
    const a = turnCredential(SECRET, 'peer-1', { nowMs: NOW_MS });
    expect(turnCredential(SECRET, 'peer-2', { nowMs: NOW_MS }).credential).not.toBe(a.credential);
    expect(turnCredential(SECRET, 'peer-1', { nowMs: NOW_MS + 1000 }).credential).not.toBe(a.credential);
    expect(turnCredential(`${SECRET}x`, 'peer-1', { nowMs: NOW_MS }).credential).not.toBe(a.credential);
  });

  test.each([
    [TURN_CREDENTIAL_MIN_TTL_S - 1, 'below one allocation refresh'],
    [TURN_CREDENTIAL_MAX_TTL_S + 1, 'above a day'],
    [3600.5, 'not whole seconds'],
  ])('refuses a lifetime of %s s (%s), naming ttlSeconds', (ttlSeconds) => {
    expect(() => turnCredential(SECRET, 'p', { ttlSeconds })).toThrow(TurnCredentialError);
    expect(() => turnCredential(SECRET, 'p', { ttlSeconds })).toThrow(/^ttlSeconds: .*from 600 .* to 86400/);
  });

  test.each(['', 'a:b', 'a b', 'x'.repeat(129), 'ü'])('refuses the peer id %j, naming peerId', (peerId) => {
    expect(() => turnCredential(SECRET, peerId)).toThrow(/^peerId: /);
  });

  test('refuses a short secret and an asymmetric key, naming secret', () => {
    expect(() => turnCredential('short', 'p')).toThrow(/^secret: is 5 bytes; use at least 32/);
    const { privateKey } = generateKeyPairSync('ed25519');
    expect(() => turnCredential(privateKey, 'p')).toThrow(/^secret: must be a shared secret/);
  });
});

describe('the iceServers entry', () => {
  test('has the UDP, TCP and TLS URLs of the region, in that order', () => {
    expect(turnUrls({ host: 'turn.eu-west-1.api.example.com', tlsPort: 443 })).toEqual([
      'turn:turn.eu-west-1.api.example.com:3478?transport=udp',
      'turn:turn.eu-west-1.api.example.com:3478?transport=tcp',
      'turns:turn.eu-west-1.api.example.com:443?transport=tcp',
    ]);
    expect(turnUrls({ host: '127.0.1.1', port: 3478, tlsPort: 5349 })[2]).toBe(
      'turns:127.0.1.1:5349?transport=tcp',
    );
  });

  test('is one RTCIceServer carrying one credential for the three URLs', () => {
    const { iceServers, expiresAt } = turnIceServers({
      secret: SECRET,
      peerId: 'peer-1',
      endpoint: { host: 'turn.example.com', tlsPort: 443 },
      nowMs: NOW_MS,
    });
    const cred = turnCredential(SECRET, 'peer-1', { nowMs: NOW_MS });
    expect(iceServers).toEqual([
      {
        urls: turnUrls({ host: 'turn.example.com', tlsPort: 443 }),
        username: cred.username,
        credential: cred.credential,
      },
    ]);
    expect(expiresAt).toBe(cred.expiresAt);
  });

  test.each([
    [{ host: 'turn.example.com', tlsPort: 0 }, /^tlsPort: 0 is not a port/],
    [{ host: 'turn.example.com', port: 70000, tlsPort: 443 }, /^port: 70000 is not a port/],
    [{ host: 'turn example', tlsPort: 443 }, /^host: "turn example" is not a host name/],
    [{ host: 'x?transport=tcp', tlsPort: 443 }, /^host: /],
  ])('refuses the endpoint %j with an error naming the field', (endpoint, message) => {
    expect(() => turnUrls(endpoint)).toThrow(message);
  });
});
