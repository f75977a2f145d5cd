/**
 * The two services' environment contracts: what a writer produces, the reader takes back as the same
 * settings (so CDK, the local stack and the benches cannot drift from the services), and a bad
 * environment fails with one error class that names each variable, never showing a secret.
 */
import { EnvironmentError } from '../../../runtime/protocol/environment';
import {
  LB_SECRET_VARIABLES,
  lbEnvironment,
  readLbEnvironment,
} from '../../../runtime/protocol/lbEnvironment';
import {
  MEDIA_INSTANCE_VARIABLES,
  mediaEnvironment,
  readMediaEnvironment,
} from '../../../runtime/protocol/mediaEnvironment';

const JOIN = JSON.stringify({ kid: 'j1', secret: 'join-secret-0123456789abcdef-0123456789' });
const MEDIA = JSON.stringify({ kid: 'm1', secret: 'media-secret-0123456789abcdef-012345678' });

test('the LB reads back what its writer wrote', () => {
  const env = lbEnvironment({
    region: 'eu-west-1',
    tableName: 'mrwebrtc-rooms',
    dynamoEndpoint: 'http://127.0.2.1:8000',
    host: '127.0.2.1',
    port: 8080,
    publicApiUrl: 'http://127.0.2.1:8080',
    corsOrigins: ['http://127.0.0.1:3000', 'https://meet.example.com'],
    trustProxyHops: 1,
    logLevel: 'warn',
    joinTokenKeys: JOIN,
    mediaTokenKeys: MEDIA,
  });
  expect(readLbEnvironment(env)).toMatchObject({
    region: 'eu-west-1',
    tableName: 'mrwebrtc-rooms',
    dynamoEndpoint: 'http://127.0.2.1:8000',
    host: '127.0.2.1',
    port: 8080,
    publicApiUrl: 'http://127.0.2.1:8080',
    corsOrigins: ['http://127.0.0.1:3000', 'https://meet.example.com'],
    trustProxyHops: 1,
    logLevel: 'warn',
    joinTokenKeys: { current: { kid: 'j1' } },
    mediaTokenKeys: { current: { kid: 'm1' } },
  });
});

test('without key sets, the LB environment holds none: on AWS they come as secrets under these names', () => {
  const env = lbEnvironment({
    region: 'eu-west-1',
    tableName: 't-rooms',
    publicApiUrl: 'https://x.example.com',
  });
  expect(Object.keys(env)).not.toContain(LB_SECRET_VARIABLES.joinTokenKeys);
  expect(() => readLbEnvironment(env)).toThrow(EnvironmentError);
  expect(readLbEnvironment({ ...env, JOIN_TOKEN_KEYS: JOIN, MEDIA_TOKEN_KEYS: MEDIA }).region).toBe(
    'eu-west-1',
  );
});

test('the media server reads back what its writer wrote, shared and per-instance parts', () => {
  const shared = {
    region: 'us-east-1',
    tableName: 'mrwebrtc-rooms',
    listenHost: '10.0.1.5',
    signalingPort: 7000,
    rtcMinPort: 40000,
    rtcMaxPort: 40099,
    numWorkers: 2,
    capacity: 300,
    drainTimeoutMs: 60_000,
    maxRoomPeers: 50,
    pingIntervalMs: 4_000,
    debugEndpoints: false,
    logLevel: 'debug' as const,
    engine: 'current' as const,
  };
  const instance = {
    serverId: 'i-0abc',
    publicIp: '203.0.113.7',
    privateEndpoint: 'ws://10.0.1.5:7000',
    mediaTokenKeys: MEDIA,
  };
  const env = mediaEnvironment(shared, instance);
  expect(env.MEDIA_ENGINE).toBe('current');
  const { engine: _engine, ...rest } = shared;
  expect(readMediaEnvironment(env)).toMatchObject({
    ...rest,
    ...instance,
    mediaTokenKeys: { current: { kid: 'm1' } },
  });
  // The fleet's part alone lacks exactly what only the instance knows.
  const sharedOnly = Object.keys(mediaEnvironment(shared));
  for (const name of Object.values(MEDIA_INSTANCE_VARIABLES)) expect(sharedOnly).not.toContain(name);
});

test('both services fail the same way: every bad variable named, secrets never shown', () => {
  const lb = (() => {
    try {
      readLbEnvironment({ REGION: 'mars-1', JOIN_TOKEN_KEYS: '{"kid":"j","secret":"hunter2"}' });
    } catch (err) {
      return err as EnvironmentError;
    }
  })()!;
  const media = (() => {
    try {
      readMediaEnvironment({ REGION: 'eu-west-1', MEDIA_TOKEN_KEYS: '{"kid":"m","secret":"hunter2"}' });
    } catch (err) {
      return err as EnvironmentError;
    }
  })()!;
  for (const [err, service] of [
    [lb, 'LB'],
    [media, 'media server'],
  ] as const) {
    expect(err).toBeInstanceOf(EnvironmentError);
    expect(err.message.startsWith(`invalid ${service} environment:\n`)).toBe(true);
    expect(err.message).not.toContain('hunter2');
  }
  expect(lb.problems).toEqual(
    expect.arrayContaining([
      'REGION: must be an AWS region name such as "eu-west-1" (got "mars-1")',
      'JOIN_TOKEN_KEYS: secret is 7 bytes; use at least 32 random bytes (set, not shown)',
      expect.stringMatching(/^TABLE_NAME: .*\(unset\)$/),
    ]),
  );
  expect(media.problems).toEqual(
    expect.arrayContaining([
      'MEDIA_TOKEN_KEYS: secret is 7 bytes; use at least 32 random bytes (set, not shown)',
      expect.stringMatching(/^SERVER_ID: .*\(unset\)$/),
    ]),
  );
});
