/**
 * The local stack's children start the way their AWS twins do: each one's environment is read back by
 * its service's own reader (runtime/protocol), pointed at its region's address and emulator.
 */
import { readLbEnvironment } from '../../../runtime/protocol/lbEnvironment';
import { readMediaEnvironment } from '../../../runtime/protocol/mediaEnvironment';
import { freshKeySets } from '../../../runtime/local/devKeys';
import type { LocalRegion } from '../../../runtime/local/layout';
import { localLogLevel, regionProcesses } from '../../../runtime/local/processes';
import type { PreparedTurnRelay } from '../../../runtime/local/TurnRelay';
import { turnPassword } from '../../../runtime/lb/turnCredentials';

const region: LocalRegion = {
  name: 'eu-west-1',
  address: '127.0.2.1',
  lbUrl: 'http://127.0.2.1:8080',
  apiUrl: 'http://eu-west-1.api.mr.test:8080',
  backupApiUrl: 'http://eu-west-1.api-backup.mr-backup.test:8080',
  dynamoEndpoint: 'http://127.0.2.1:8000',
  turn: { host: '127.0.2.1', port: 3478, tlsPort: 5349 },
  media: [
    { id: 'eu-west-1-m0', signalingPort: 9000, rtcMinPort: 10000, rtcMaxPort: 10999 },
    { id: 'eu-west-1-m1', signalingPort: 9001, rtcMinPort: 11000, rtcMaxPort: 11999 },
  ],
};
const keys = freshKeySets();
const settings = {
  tableName: 'mr-local',
  lbPort: 8080,
  backupDomain: 'mr-backup.test',
  corsOrigin: 'http://127.0.0.1:3000',
  logLevel: 'warn' as const,
  keys,
  turnCredentialTtlSeconds: 3600,
};
const relay: PreparedTurnRelay = {
  region: 'eu-west-1',
  endpoint: { host: '127.0.2.1', port: 3478, tlsPort: 5349 },
  files: {
    config: '/tmp/relay/turnserver.conf',
    log: '/tmp/relay/turnserver.log',
    pid: '/tmp/relay/turnserver.pid',
    database: '/tmp/relay/turndb',
    cert: undefined,
    key: undefined,
  },
  command: { file: 'turnserver', args: ['-c', '/tmp/relay/turnserver.conf'] },
  startTimeoutMs: 10_000,
  removeSecrets: () => undefined,
};

test("a region's children are its media servers, then its LB", () => {
  expect(regionProcesses(region, settings).map((c) => [c.name, c.role, c.region])).toEqual([
    ['eu-west-1-m0', 'media', 'eu-west-1'],
    ['eu-west-1-m1', 'media', 'eu-west-1'],
    ['eu-west-1-lb', 'lb', 'eu-west-1'],
  ]);
});

test("a media server's environment passes its reader, on the region's address and replica", () => {
  const [m1] = regionProcesses(region, settings).filter((c) => c.name === 'eu-west-1-m1');
  const env = readMediaEnvironment(m1!.env);
  expect(env).toMatchObject({
    region: 'eu-west-1',
    tableName: 'mr-local',
    dynamoEndpoint: 'http://127.0.2.1:8000',
    serverId: 'eu-west-1-m1',
    listenHost: '127.0.2.1',
    publicIp: '127.0.2.1',
    signalingPort: 9001,
    privateEndpoint: 'ws://127.0.2.1:9001',
    rtcMinPort: 11000,
    rtcMaxPort: 11999,
    logLevel: 'warn',
  });
  expect([...env.mediaTokenKeys.byKid.keys()]).toEqual([keys.mediaTokenKeys.kid]);
  expect(m1!.env.AWS_ACCESS_KEY_ID).toBe('local');
  // Media servers get only the media keys, as on AWS.
  expect(Object.values(m1!.env)).not.toContain(JSON.stringify(keys.joinTokenKeys));
});

test("the LB's environment passes its reader: both key sets, both name families, the dashboard as CORS origin", () => {
  const lb = regionProcesses(region, settings).find((c) => c.role === 'lb')!;
  const env = readLbEnvironment(lb.env);
  expect(env).toMatchObject({
    region: 'eu-west-1',
    dynamoEndpoint: 'http://127.0.2.1:8000',
    host: '127.0.2.1',
    port: 8080,
    publicApiUrl: 'http://eu-west-1.api.mr.test:8080',
    backupApiUrl: 'http://eu-west-1.api-backup.mr-backup.test:8080',
    backupDomain: 'mr-backup.test',
    // Only IP-literal Hosts (the browser demo) get addresses back.
    addressApiUrl: 'http://127.0.2.1:8080',
    corsOrigins: ['http://127.0.0.1:3000'],
  });
  expect([...env.joinTokenKeys.byKid.keys()]).toEqual([keys.joinTokenKeys.kid]);
  expect([...env.mediaTokenKeys.byKid.keys()]).toEqual([keys.mediaTokenKeys.kid]);
});

test("LOG_LEVEL sets the children's level only when it names one", () => {
  expect(localLogLevel('debug')).toBe('debug');
  expect(localLogLevel('loud')).toBe('info');
  expect(localLogLevel(undefined)).toBe('info');
});

test("with its relay, a region starts coturn itself first, and its LB signs that relay's credentials", () => {
  const children = regionProcesses(region, settings, relay);
  expect(children.map((c) => [c.name, c.role])).toEqual([
    ['eu-west-1-turn', 'turn'],
    ['eu-west-1-m0', 'media'],
    ['eu-west-1-m1', 'media'],
    ['eu-west-1-lb', 'lb'],
  ]);
  // coturn is the child (no wrapper), so a chaos signal to the region's processes reaches the relay.
  expect(children[0]!.entry).toEqual({ file: 'turnserver', args: ['-c', '/tmp/relay/turnserver.conf'] });
  const env = readLbEnvironment(children.find((c) => c.role === 'lb')!.env);
  expect(env.turn).toMatchObject({ hostPrefix: '', port: 3478, tlsPort: 5349, ttlSeconds: 3600 });
  // The LB signs with this run's secret, the one the relay's config holds.
  expect(turnPassword(env.turn!.secret.current.key, '1:p')).toBe(turnPassword(keys.turnSecret.secret, '1:p'));
  // Media servers never get the TURN secret.
  for (const media of children.filter((c) => c.role === 'media')) {
    expect(Object.values(media.env).join('\n')).not.toContain(keys.turnSecret.secret);
  }
});

test('without a relay the LB hands out none', () => {
  const lb = regionProcesses(region, settings).find((c) => c.role === 'lb')!;
  expect(readLbEnvironment(lb.env).turn).toBeUndefined();
});
