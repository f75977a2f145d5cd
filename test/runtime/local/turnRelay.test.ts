/**
 * A local region's TURN relay: real coturn, real sockets. Credentials from runtime/lb/turnCredentials.ts
 * allocate (coturn's own client, turnutils_uclient, over UDP and TCP; our RFC 5766 client over TLS),
 * expired and forged ones do not, and the relay reaches the region's media servers and nothing else.
 *
 * The relay stands in for a region on 127.0.120.1; that address is also its "media server" (as in the
 * local stack, where every process of a region shares the region's address). 127.0.120.2 stands for
 * everything a client must not reach through the relay: another region, an internal service.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { turnCredential, TURN_CREDENTIAL_MIN_TTL_S } from '../../../runtime/lb/turnCredentials';
import { TurnRelay, TurnRelayError } from '../../../runtime/local/TurnRelay';
import { TurnClient, TurnErrorResponse, type Address } from './turnClient';

const REGION_ADDRESS = '127.0.120.1';
const OTHER_ADDRESS = '127.0.120.2';
const PORT = 23478;
const TLS_PORT = 25349;
const RELAY_PORTS = { min: 26000, max: 26099 };
/** turnutils_uclient's peers (turnutils_peer, a UDP echo) listen here. */
const PEER_PORT = 23480;
/** Our own UDP listeners: a media server of the region, and a service it must not reach. */
const LISTENER_PORT = 26500;
const CURRENT_SECRET = 'current-turn-secret-0123456789abcdef0123';
const PREVIOUS_SECRET = 'previous-turn-secret-0123456789abcdef012';
const REALM = 'turn.test-region.mr.test';

let stateDir: string;
let relay: TurnRelay;
const peers: ChildProcess[] = [];

beforeAll(async () => {
  // coturn's own tools are part of the test, not optional: say what to install rather than fail obscurely.
  for (const tool of ['turnserver', 'turnutils_uclient', 'turnutils_peer', 'openssl', 'ss']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      throw new Error(`${tool} is not installed; on Debian: apt-get install coturn openssl iproute2`);
    }
  }
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'turn-relay-'));
  relay = await TurnRelay.start({
    region: 'test-region',
    address: REGION_ADDRESS,
    port: PORT,
    tlsPort: TLS_PORT,
    relayPortMin: RELAY_PORTS.min,
    relayPortMax: RELAY_PORTS.max,
    realm: REALM,
    // A rotation in progress: the current secret signs, the previous one is still accepted.
    secrets: [CURRENT_SECRET, PREVIOUS_SECRET],
    allowedPeers: [REGION_ADDRESS],
    stateDir: path.join(stateDir, 'relay'),
  });
  for (const address of [REGION_ADDRESS, OTHER_ADDRESS]) {
    const peer = spawn('turnutils_peer', ['-L', address, '-p', String(PEER_PORT)], { stdio: 'ignore' });
    peers.push(peer);
  }
  await new Promise((r) => setTimeout(r, 300));
}, 30_000);

afterAll(async () => {
  for (const peer of peers) peer.kill();
  await relay?.close();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

/** turnutils_uclient, coturn's standard test client: its exit status and everything it printed. */
function uclient(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('turnutils_uclient', args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? -1) : 0;
      resolve({ code: typeof code === 'number' ? code : -1, output: `${stdout}${stderr}` });
    });
  });
}

/** Five 100-byte messages to `peer` through the relay, echoed back by turnutils_peer. */
function relayedEcho(
  cred: { username: string; credential: string },
  opts: { peer?: string; tcp?: boolean } = {},
) {
  return uclient([
    ...(opts.tcp ? ['-t'] : []),
    ...['-n', '5', '-m', '1', '-l', '100'],
    ...['-e', opts.peer ?? REGION_ADDRESS, '-r', String(PEER_PORT)],
    ...['-u', cred.username, '-w', cred.credential, '-p', String(PORT), REGION_ADDRESS],
  ]);
}

/** uclient's final count of messages sent to and echoed back by the peer (it prints running counts before). */
function totals(output: string): { sent: number; received: number } | undefined {
  const m = [...output.matchAll(/tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/g)].pop();
  return m ? { sent: Number(m[1]), received: Number(m[2]) } : undefined;
}

async function udpListener(address: string, port: number) {
  const socket = dgram.createSocket('udp4');
  const received: { data: string; from: Address }[] = [];
  socket.on('message', (msg, from) => received.push({ data: msg.toString(), from }));
  await new Promise<void>((resolve) => socket.bind(port, address, () => resolve()));
  return { received, close: () => new Promise<void>((r) => socket.close(() => r())) };
}

let peers_ = 0;
/** A client with an allocation; each with its own peer id, so no test runs into the per-user quota. */
async function allocatedClient(secret = CURRENT_SECRET, peerId = `peer-${++peers_}`): Promise<TurnClient> {
  const client = await TurnClient.connect({ transport: 'udp', host: REGION_ADDRESS, port: PORT });
  const { username, credential } = turnCredential(secret, peerId);
  await client.allocate(username, credential);
  return client;
}

async function errorOf(promise: Promise<unknown>): Promise<TurnErrorResponse> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TurnErrorResponse) return err;
    throw err;
  }
  throw new Error('the relay accepted what it should have refused');
}

describe('credentials', () => {
  test('one from turnCredentials allocates and relays, over UDP and over TCP (turnutils_uclient)', async () => {
    const cred = turnCredential(CURRENT_SECRET, 'uclient-peer');
    for (const tcp of [false, true]) {
      const { code, output } = await relayedEcho(cred, { tcp });
      expect({ tcp, code }).toEqual({ tcp, code: 0 });
      const t = totals(output);
      expect(t).toBeDefined();
      expect(t!.sent).toBeGreaterThan(0);
      expect(t!.received).toBe(t!.sent);
    }
  });

  test('one signed with the previous secret still allocates while the relay lists it (rotation)', async () => {
    const { code, output } = await relayedEcho(turnCredential(PREVIOUS_SECRET, 'rotating-peer'));
    expect(code).toBe(0);
    expect(totals(output)?.received).toBeGreaterThan(0);
  });

  test('one over TLS allocates, and the certificate is valid for the relay address', async () => {
    const client = await TurnClient.connect({
      transport: 'tls',
      host: REGION_ADDRESS,
      port: TLS_PORT,
      ca: fs.readFileSync(relay.files.cert!),
    });
    try {
      const { username, credential } = turnCredential(CURRENT_SECRET, 'tls-peer');
      const relayed = await client.allocate(username, credential);
      expect(relayed.address).toBe(REGION_ADDRESS);
      expect(relayed.port).toBeGreaterThanOrEqual(RELAY_PORTS.min);
      expect(relayed.port).toBeLessThanOrEqual(RELAY_PORTS.max);
    } finally {
      await client.close();
    }
  });

  test('an expired one is refused with 401, by uclient and by our client', async () => {
    // Issued TURN_CREDENTIAL_MIN_TTL_S + 60 s ago: expired a minute ago.
    const expired = turnCredential(CURRENT_SECRET, 'late-peer', {
      ttlSeconds: TURN_CREDENTIAL_MIN_TTL_S,
      nowMs: Date.now() - (TURN_CREDENTIAL_MIN_TTL_S + 60) * 1000,
    });
    const { code, output } = await relayedEcho(expired);
    expect(code).not.toBe(0);
    expect(output).toMatch(/Cannot complete Allocation/);
    const client = await TurnClient.connect({ transport: 'udp', host: REGION_ADDRESS, port: PORT });
    try {
      expect((await errorOf(client.allocate(expired.username, expired.credential))).code).toBe(401);
    } finally {
      await client.close();
    }
  });

  test.each([
    ['signed with a secret the relay does not hold', () => turnCredential(`${CURRENT_SECRET}-forged`, 'p')],
    [
      'with its expiry pushed back after signing',
      () => {
        const cred = turnCredential(CURRENT_SECRET, 'p');
        return { ...cred, username: cred.username.replace(/^\d+/, (e) => String(Number(e) + 86_400)) };
      },
    ],
    [
      'with another peer id under a valid signature',
      () => ({
        ...turnCredential(CURRENT_SECRET, 'p'),
        username: turnCredential(CURRENT_SECRET, 'q').username,
      }),
    ],
  ])('a forged one (%s) is refused with 401', async (_name, forge) => {
    const cred = forge();
    const client = await TurnClient.connect({ transport: 'udp', host: REGION_ADDRESS, port: PORT });
    try {
      expect((await errorOf(client.allocate(cred.username, cred.credential))).code).toBe(401);
    } finally {
      await client.close();
    }
    expect((await relayedEcho(cred)).code).not.toBe(0);
  });

  test('coturn checks the expiry when a session authenticates, not on each refresh of it', async () => {
    // This is the behaviour the credential lifetime in runtime/lb/turnCredentials.ts is chosen for; if a
    // coturn upgrade changes it, this fails and that reasoning needs another look.
    const soon = turnCredential(CURRENT_SECRET, 'expiring-peer', {
      ttlSeconds: TURN_CREDENTIAL_MIN_TTL_S,
      nowMs: Date.now() - (TURN_CREDENTIAL_MIN_TTL_S - 2) * 1000,
    });
    const client = await TurnClient.connect({ transport: 'udp', host: REGION_ADDRESS, port: PORT });
    try {
      await client.allocate(soon.username, soon.credential);
      await new Promise((r) => setTimeout(r, Math.max(0, soon.expiresAt - Date.now()) + 1500));
      expect(Date.now()).toBeGreaterThan(soon.expiresAt);
      // The allocation made before the expiry lives on ...
      await expect(client.refresh(600)).resolves.toBe(600);
      await expect(client.createPermission(REGION_ADDRESS)).resolves.toBeUndefined();
    } finally {
      await client.close();
    }
    // ... but the same credential cannot start a new one (an ICE restart, a reconnect).
    const again = await TurnClient.connect({ transport: 'udp', host: REGION_ADDRESS, port: PORT });
    try {
      expect((await errorOf(again.allocate(soon.username, soon.credential))).code).toBe(401);
    } finally {
      await again.close();
    }
  });
});

describe('peers', () => {
  test('relays to a media server of its region, and to nothing else that listens', async () => {
    const media = await udpListener(REGION_ADDRESS, LISTENER_PORT);
    const other = await udpListener(OTHER_ADDRESS, LISTENER_PORT);
    const client = await allocatedClient();
    try {
      await client.createPermission(REGION_ADDRESS);
      expect((await errorOf(client.createPermission(OTHER_ADDRESS))).code).toBe(403);
      // Without a permission the relay must drop the data; with one it forwards it. Both sent now, so
      // the media server's packet arriving shows the relay had time to forward the other one too.
      client.send({ address: OTHER_ADDRESS, port: LISTENER_PORT }, Buffer.from('to-other'));
      client.send({ address: REGION_ADDRESS, port: LISTENER_PORT }, Buffer.from('to-media'));
      const deadline = Date.now() + 3000;
      while (media.received.length === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      expect(media.received.map((m) => m.data)).toEqual(['to-media']);
      expect(media.received[0]!.from.address).toBe(REGION_ADDRESS);
      expect(other.received).toEqual([]);
    } finally {
      await client.close();
      await media.close();
      await other.close();
    }
  });

  test('turnutils_uclient gets 403 Forbidden IP for a peer that is not a media server', async () => {
    const { code, output } = await relayedEcho(turnCredential(CURRENT_SECRET, 'curious-peer'), {
      peer: OTHER_ADDRESS,
    });
    expect(code).not.toBe(0);
    expect(output).toMatch(/403 \(Forbidden IP\)/);
    expect(totals(output)?.received ?? 0).toBe(0);
  });

  test.each([
    ['127.0.0.1', 'loopback (the host)'],
    ['0.0.0.0', 'the relay host through "this network" (CVE-2020-26262)'],
    ['169.254.169.254', 'the EC2 instance metadata service'],
    ['169.254.169.253', 'the Amazon DNS resolver'],
    ['10.0.0.2', 'a VPC resolver'],
    ['192.168.1.1', 'a private network'],
    ['8.8.8.8', 'a public host that is no media server'],
    ['224.0.0.1', 'multicast'],
  ])('refuses a permission for %s (%s)', async (address) => {
    const client = await allocatedClient();
    try {
      const err = await errorOf(client.createPermission(address));
      expect({ address, code: err.code }).toEqual({ address, code: 403 });
    } finally {
      await client.close();
    }
  });

  test('logs a refused peer with the special-purpose range that refused it', async () => {
    const client = await allocatedClient();
    try {
      await errorOf(client.createPermission('169.254.169.254'));
    } finally {
      await client.close();
    }
    expect(fs.readFileSync(relay.files.log, 'utf8')).toMatch(
      /peer IP 169\.254\.169\.254 denied in the range: 169\.254\.0\.0-169\.254\.255\.255/,
    );
  });
});

describe('the process', () => {
  test('listens only on its UDP, TCP and TLS ports (no CLI, no admin) and relays from its range', () => {
    const sockets = execFileSync('ss', ['-H', '-l', '-n', '-p', '-t', '-u'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(`pid=${relay.pid},`))
      .map((line) => {
        const cols = line.trim().split(/\s+/);
        return `${cols[0]} ${cols[4]}`;
      });
    const relayPort = (s: string) => {
      const m = /^udp \S+:(\d+)$/.exec(s);
      return m !== null && Number(m[1]) >= RELAY_PORTS.min && Number(m[1]) <= RELAY_PORTS.max;
    };
    expect(new Set(sockets.filter((s) => !relayPort(s)))).toEqual(
      new Set([
        `udp ${REGION_ADDRESS}:${PORT}`,
        `tcp ${REGION_ADDRESS}:${PORT}`,
        `tcp ${REGION_ADDRESS}:${TLS_PORT}`,
      ]),
    );
  });

  test('keeps its secret-bearing files to this user and writes its pid', () => {
    expect(fs.statSync(path.dirname(relay.files.config)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(relay.files.config).mode & 0o777).toBe(0o600);
    expect(fs.statSync(relay.files.key!).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(relay.files.config, 'utf8')).toContain(`static-auth-secret=${CURRENT_SECRET}`);
    expect(Number(fs.readFileSync(relay.files.pid, 'utf8').trim())).toBe(relay.pid);
  });

  test('starts and serves as an unprivileged user, files and all', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turn-relay-user-'));
    const fixture = path.join(__dirname, 'fixtures', 'turnRelayAsUser.ts');
    const node = [process.execPath, '--import', 'tsx', fixture, path.join(dir, 'relay')];
    // As root, drop to nobody for the run; otherwise this suite already runs unprivileged.
    const asRoot = process.getuid!() === 0;
    if (asRoot) fs.chownSync(dir, 65534, 65534);
    const [command, ...args] = asRoot
      ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...node]
      : node;
    try {
      const output = await new Promise<string>((resolve, reject) =>
        execFile(
          command!,
          args,
          { timeout: 25_000, cwd: path.resolve(__dirname, '../../..') },
          (err, stdout) => (err && !stdout ? reject(err) : resolve(stdout)),
        ),
      );
      const result = JSON.parse(output.trim().split('\n').pop()!);
      expect(result.error).toBeUndefined();
      expect(result.uid).not.toBe(0);
      expect(result.relayed.address).toBe('127.0.120.3');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('start', () => {
  const base = {
    region: 'bad',
    address: '127.0.120.4',
    port: 23478,
    relayPortMin: 26200,
    relayPortMax: 26299,
    realm: 'turn.bad.test',
    secrets: [CURRENT_SECRET],
    allowedPeers: ['127.0.120.4'],
  };
  const start = (overrides: Partial<Parameters<typeof TurnRelay.start>[0]>) =>
    TurnRelay.start({ ...base, stateDir: path.join(stateDir, 'bad'), ...overrides });

  test('refuses a port another relay holds, which coturn itself would silently share', async () => {
    await expect(start({ address: REGION_ADDRESS, allowedPeers: [REGION_ADDRESS] })).rejects.toThrow(
      /127\.0\.120\.1:23478\/udp is in use/,
    );
  });

  test.each([
    [{ allowedPeers: [] }, /allowedPeers: is empty/],
    [{ allowedPeers: ['127.0.120.4', '169.254.0.0/16'] }, /allowedPeers\[1\]: "169\.254\.0\.0\/16" overlaps/],
    [
      { allowedPeers: ['0.0.0.0-255.255.255.255'] },
      /allowedPeers\[0\]: .* overlaps 0\.0\.0\.0-0\.255\.255\.255/,
    ],
    [{ allowedPeers: ['media-1'] }, /allowedPeers\[0\]: "media-1" is not an IPv4 address/],
    [{ secrets: ['short'] }, /secrets\[0\]: is not a usable TURN secret/],
    [{ secrets: [`${CURRENT_SECRET}\nno-auth`] }, /secrets\[0\]: is not a usable TURN secret/],
    [{ secrets: [] }, /secrets: is empty/],
    [{ address: '10.0.0.1' }, /address: "10\.0\.0\.1" is not a loopback/],
    [{ relayPortMin: 23000, relayPortMax: 24000 }, /contains the listening port 23478/],
    [{ realm: 'a b' }, /realm: "a b"/],
  ])('refuses %j with a message naming the field', async (overrides, message) => {
    const err = await start(overrides as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TurnRelayError);
    expect((err as Error).message).toMatch(message);
  });

  test('says how to install coturn when it is missing', async () => {
    await expect(start({ turnserverPath: '/nonexistent/turnserver' })).rejects.toThrow(
      /coturn is not installed \(Debian: apt-get install coturn\)/,
    );
  });

  test('says how to get openssl when TLS needs it and it is missing', async () => {
    await expect(start({ opensslPath: '/nonexistent/openssl' })).rejects.toThrow(
      /install openssl .* or start the relay with tls: false/,
    );
  });

  /** A `turnserver` that prints `line` first and then runs the real one (or exits, when `exit` is set). */
  function fakeTurnserver(name: string, line: string, exit?: number): string {
    const file = path.join(stateDir, name);
    const real = execFileSync('sh', ['-c', 'command -v turnserver'], { encoding: 'utf8' }).trim();
    fs.writeFileSync(
      file,
      `#!/bin/sh\necho '${line}'\n${exit === undefined ? `exec ${real} "$@"` : `exit ${exit}`}\n`,
      { mode: 0o755 },
    );
    return file;
  }

  test('fails when coturn skips a line of its configuration (it would run without that rule)', async () => {
    const turnserverPath = fakeTurnserver('skips-a-line', '0: : Bad configuration format: denied-peer-ip');
    await expect(start({ turnserverPath, tls: false })).rejects.toThrow(
      /skipped configuration it was given:\n.*Bad configuration format: denied-peer-ip/,
    );
  });

  test('fails with the end of its log when coturn exits during start', async () => {
    const turnserverPath = fakeTurnserver('exits', '0: : cannot start: no memory', 1);
    await expect(start({ turnserverPath, tls: false })).rejects.toThrow(
      /exited during start; its log .*\n.*cannot start: no memory/,
    );
  });

  test('after close, the process is gone and so are the config and key', async () => {
    const dir = path.join(stateDir, 'closing');
    const r = await start({ stateDir: dir, tls: true, tlsPort: 25349 });
    const pid = r.pid!;
    await r.close();
    await r.close();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(fs.existsSync(r.files.config)).toBe(false);
    expect(fs.existsSync(r.files.key!)).toBe(false);
    expect(fs.existsSync(r.files.log)).toBe(true);
  });
});
