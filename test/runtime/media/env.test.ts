import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { readMediaServerConfig } from '../../../runtime/media/env';

const valid = {
  REGION: 'eu-west-1',
  TABLE_NAME: 'rooms',
  MEDIA_TOKEN_KEYS: JSON.stringify({ kid: 'm1', secret: 'a-secret-of-at-least-thirty-two-bytes!!' }),
  SERVER_ID: 'media-eu-1',
  LISTEN_HOST: '10.0.1.5',
  SIGNALING_PORT: '7000',
  PRIVATE_ENDPOINT: 'ws://10.0.1.5:7000',
  PUBLIC_IP: '203.0.113.7',
  RTC_MIN_PORT: '40000',
  RTC_MAX_PORT: '40099',
  NUM_WORKERS: '4',
};

describe('media server environment', () => {
  test('announces no private address when PRIVATE_ENDPOINT is on the public one (the local stack)', () => {
    const local = readMediaServerConfig({
      ...valid,
      PUBLIC_IP: '127.0.2.1',
      PRIVATE_ENDPOINT: 'ws://127.0.2.1:7000',
    });
    expect(local.privateIp).toBeUndefined();
  });

  test('a complete environment becomes a typed config with defaults', () => {
    const config = readMediaServerConfig(valid);
    expect(config).toMatchObject({
      region: 'eu-west-1',
      serverId: 'media-eu-1',
      listenHost: '10.0.1.5',
      signalingPort: 7000,
      publicIp: '203.0.113.7',
      // A public address is NATed onto the instance: mediasoup binds every interface.
      rtcListenIp: '0.0.0.0',
      rtcMinPort: 40000,
      rtcMaxPort: 40099,
      numWorkers: 4,
      capacity: 500,
      heartbeatIntervalMs: 2000,
      debugEndpoints: false,
      // A room holds 100 peers; a live room's item TTL is pushed forward every hour.
      room: { maxPeers: 100 },
      roomRefreshIntervalMs: 3_600_000,
      // The private address of PRIVATE_ENDPOINT is announced too: the TURN relay reaches only that one.
      privateIp: '10.0.1.5',
    });
    expect(config.mediaTokenKeys.current.kid).toBe('m1');
    expect(config.mediaTokenKeys.current.key).toMatchObject({
      type: 'secret',
      symmetricKeySize: 'a-secret-of-at-least-thirty-two-bytes!!'.length,
    });
  });

  test('the room cap and the room refresh period can be set', () => {
    expect(
      readMediaServerConfig({ ...valid, MAX_ROOM_PEERS: '12', ROOM_REFRESH_INTERVAL_MS: '600000' }),
    ).toMatchObject({ room: { maxPeers: 12 }, roomRefreshIntervalMs: 600_000 });
  });

  test('a loopback public address is bound directly (the local stack runs regions side by side)', () => {
    expect(readMediaServerConfig({ ...valid, PUBLIC_IP: '127.0.2.1' }).rtcListenIp).toBe('127.0.2.1');
    expect(
      readMediaServerConfig({ ...valid, PUBLIC_IP: '127.0.2.1', RTC_LISTEN_IP: '0.0.0.0' }).rtcListenIp,
    ).toBe('0.0.0.0');
  });

  test.each([
    [{ SIGNALING_PORT: undefined }, /SIGNALING_PORT: .*\(unset\)/],
    [
      { PRIVATE_ENDPOINT: 'http://10.0.1.5:7000/x' },
      /PRIVATE_ENDPOINT: must be ws:\/\/host:port \(no path\) \(got "http:\/\/10.0.1.5:7000\/x"\)/,
    ],
    [{ PUBLIC_IP: '300.1.1.1' }, /PUBLIC_IP: must be an IPv4 address such as 10.0.1.23 \(got "300.1.1.1"\)/],
    [{ RTC_MIN_PORT: '41000' }, /RTC_MAX_PORT: must be >= RTC_MIN_PORT \(got "40099"\)/],
    [{ SERVER_ID: 'has spaces' }, /SERVER_ID: .*\(got "has spaces"\)/],
    [{ REGION: 'eu west' }, /REGION: must be an AWS region name such as "eu-west-1" \(got "eu west"\)/],
    [
      { MEDIA_TOKEN_KEYS: JSON.stringify({ kid: 'm1', secret: 'short' }) },
      /MEDIA_TOKEN_KEYS: secret is 5 bytes; use at least 32 random bytes \(set, not shown\)/,
    ],
    [{ RTC_MIN_PORT: '40000', RTC_MAX_PORT: '40002' }, /holds 3 ports for 4 workers/],
    [{ MAX_ROOM_PEERS: '0' }, /MAX_ROOM_PEERS: .*\(got "0"\)/],
    // A refresh period near the room item's 24 h TTL would let a live room's item expire.
    [{ ROOM_REFRESH_INTERVAL_MS: String(13 * 3_600_000) }, /ROOM_REFRESH_INTERVAL_MS: .*\(got "46800000"\)/],
  ])('%o is refused with a message naming the variable', (change, message) => {
    expect(() => readMediaServerConfig({ ...valid, ...change })).toThrow(message);
  });
});

describe('the media server process', () => {
  function run(env: Record<string, string>): { status: number | null; stderr: string } {
    const res = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.resolve(__dirname, '../../../runtime/media/server.ts')],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    return { status: res.status, stderr: res.stderr };
  }

  test('refuses to start with a bad environment, naming every bad variable, without a stack trace', () => {
    const { status, stderr } = run({ ...valid, SIGNALING_PORT: 'seventy', PUBLIC_IP: 'localhost' });
    expect(status).toBe(2);
    expect(stderr).toMatch(/SIGNALING_PORT: .*\(got "seventy"\)/);
    expect(stderr).toMatch(/PUBLIC_IP: must be an IPv4 address such as 10.0.1.23 \(got "localhost"\)/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  test('without a usable engine, says how to get one', () => {
    const engine = Number(process.versions.node.split('.')[0]) < 22 ? 'current' : 'legacy';
    const { status, stderr } = run({
      ...valid,
      MEDIA_ENGINE: engine,
      MEDIASOUP_WORKER_BIN: '/nonexistent/mediasoup-worker',
    });
    expect(status).toBe(2);
    expect(stderr).toMatch(/no usable mediasoup worker/);
    expect(stderr).toMatch(/npm ci/);
  });
});
