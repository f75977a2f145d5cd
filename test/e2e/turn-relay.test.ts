/**
 * The local stack's TURN relays end to end (one coturn per region, started by the stack itself):
 *
 * - coturn's own client, turnutils_uclient, allocates on each region's relay with the credential of a
 *   real join answer of that region and relays through it; an expired credential (signed with the
 *   run's secret) and forged ones are refused;
 * - a relay refuses a permission for any address that is not its region's media servers (the other
 *   region's address, the host's loopback), with our RFC 5766 client and with turnutils_uclient;
 * - in Chromium forced to relay (`iceTransportPolicy: 'relay'`), two pages join, exchange video through
 *   the relay (getStats: the selected candidate pair's local candidate is `relay`, on the region's relay
 *   address), and when their region is killed (LB, media server and relay SIGKILLed) they come back in
 *   the other region through that region's relay.
 *
 * Heavy (a two-region stack and Chromium): run it alone, e.g. under `flock /tmp/mrwebrtc-heavy.lock`.
 *
 * It measures timing on real media, so it runs alone on the machine (test/support/suiteLock.ts):
 * @exclusive-suite
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { turnCredential, turnPassword } from '../../runtime/lb/turnCredentials';
import type { JoinAnswer } from '../../runtime/protocol/join';
import { TURN_CREDENTIAL_MIN_TTL_S } from '../../runtime/protocol/turnRelayPolicy';
import { TurnClient, TurnErrorResponse } from '../runtime/local/turnClient';
import { E2E_REGIONS, eventually, startE2eStack, type E2eRegion, type E2eStack } from './stackHarness';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];
/** turnutils_peer (a UDP echo) listens here on each region's address: what a media server would be. */
const PEER_PORT = 18500;

jest.setTimeout(120_000);

let e2e: E2eStack | undefined;
let browser: Browser | undefined;
const echoPeers: ChildProcess[] = [];
const pageProblems: string[] = [];

beforeAll(async () => {
  for (const tool of ['turnserver', 'turnutils_uclient', 'turnutils_peer']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      throw new Error(`${tool} is not installed; on Debian: apt-get install coturn`);
    }
  }
  if (!fs.existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  e2e = await startE2eStack({ slot: 9, mediaPerRegion: 1 });
  for (const region of E2E_REGIONS) {
    echoPeers.push(
      spawn('turnutils_peer', ['-L', e2e.address(region), '-p', String(PEER_PORT)], { stdio: 'ignore' }),
    );
  }
  await new Promise((r) => setTimeout(r, 300));
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}, 150_000);

afterAll(async () => {
  for (const peer of echoPeers) peer.kill();
  await browser?.close().catch(() => undefined);
  await e2e?.stop();
}, 30_000);

function stack(): E2eStack {
  if (!e2e) throw new Error('the stack did not start (see beforeAll)');
  return e2e;
}

/** A real join through `region`'s LB; the room name makes each join its own room (placed in region). */
async function joinAnswer(region: E2eRegion, room: string): Promise<JoinAnswer> {
  const s = stack();
  const lbUrl = s.state.regions.find((r) => r.name === region)!.lbUrl;
  const res = await fetch(`${lbUrl}/v1/rooms/${room}/join`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await s.stack.devToken(room, 'turn-tester')}`,
      'content-type': 'application/json',
    },
    body: '{}',
  });
  expect(res.status).toBe(200);
  return (await res.json()) as JoinAnswer;
}

function uclient(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('turnutils_uclient', args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? -1) : 0;
      resolve({ code: typeof code === 'number' ? code : -1, output: `${stdout}${stderr}` });
    });
  });
}

/** Five 100-byte messages to `peer`:PEER_PORT through `relay`, echoed back by turnutils_peer. */
function relayedEcho(relay: string, cred: { username: string; credential: string }, peer: string) {
  return uclient([
    ...['-n', '5', '-m', '1', '-l', '100'],
    ...['-e', peer, '-r', String(PEER_PORT)],
    ...['-u', cred.username, '-w', cred.credential, '-p', String(stack().config.local.turnPort), relay],
  ]);
}

function totals(output: string): { sent: number; received: number } | undefined {
  const m = [...output.matchAll(/tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/g)].pop();
  return m ? { sent: Number(m[1]), received: Number(m[2]) } : undefined;
}

describe("each region's relay and the join answer's credential", () => {
  it.each(E2E_REGIONS)(
    '%s: the answer names its relay, and turnutils_uclient allocates and relays with its credential',
    async (region) => {
      const s = stack();
      const address = s.address(region);
      const answer = await joinAnswer(region, `turn-alloc-${region}`);
      expect(answer.region).toBe(region);
      const [server] = answer.iceServers!;
      expect(server!.urls).toEqual([
        `turn:${address}:${s.config.local.turnPort}?transport=udp`,
        `turn:${address}:${s.config.local.turnPort}?transport=tcp`,
        `turns:${address}:${s.config.local.turnTlsPort}?transport=tcp`,
      ]);
      const cred = { username: server!.username!, credential: server!.credential! };
      const { code, output } = await relayedEcho(address, cred, address);
      expect({ code, tail: code === 0 ? '' : output.slice(-600) }).toEqual({ code: 0, tail: '' });
      const t = totals(output);
      expect(t?.sent).toBeGreaterThan(0);
      expect(t?.received).toBe(t?.sent);
    },
  );

  it('refuses an expired credential and forged ones, on every relay', async () => {
    const s = stack();
    const secret = s.stack.state().turnSecret.secret;
    for (const region of E2E_REGIONS) {
      const address = s.address(region);
      const answer = await joinAnswer(region, `turn-forged-${region}`);
      const real = {
        username: answer.iceServers![0]!.username!,
        credential: answer.iceServers![0]!.credential!,
      };
      const peerId = real.username.split(':')[1]!;
      const expired = turnCredential(secret, peerId, {
        ttlSeconds: TURN_CREDENTIAL_MIN_TTL_S,
        nowMs: Date.now() - (TURN_CREDENTIAL_MIN_TTL_S + 60) * 1000,
      });
      const pushedBack = real.username.replace(/^\d+/, (e) => String(Number(e) + 86_400));
      const forged = [
        { why: 'expired', cred: expired },
        {
          why: 'wrong secret',
          cred: { username: real.username, credential: turnPassword('x'.repeat(40), real.username) },
        },
        { why: 'expiry pushed back', cred: { username: pushedBack, credential: real.credential } },
      ];
      for (const { why, cred } of forged) {
        const { code, output } = await relayedEcho(address, cred, address);
        expect(code).not.toBe(0);
        expect(output).toMatch(/Cannot complete Allocation/);
        expect(totals(output)?.received ?? 0).toBe(0);
        const client = await TurnClient.connect({
          transport: 'udp',
          host: address,
          port: s.config.local.turnPort,
        });
        try {
          const err = await client.allocate(cred.username, cred.credential).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(TurnErrorResponse);
          expect({ region, why, code: (err as TurnErrorResponse).code }).toEqual({ region, why, code: 401 });
        } finally {
          await client.close();
        }
      }
      // The real one still works: the refusals were about the credentials.
      expect((await relayedEcho(address, real, address)).code).toBe(0);
    }
  });
});

describe("a relay reaches its region's media servers and nothing else", () => {
  it.each(E2E_REGIONS)(
    "%s: a permission for another local address (the other region, the host's loopback) is refused",
    async (region) => {
      const s = stack();
      const address = s.address(region);
      const other = s.address(E2E_REGIONS.find((r) => r !== region)!);
      const answer = await joinAnswer(region, `turn-peers-${region}`);
      const [server] = answer.iceServers!;
      const client = await TurnClient.connect({
        transport: 'udp',
        host: address,
        port: s.config.local.turnPort,
      });
      try {
        const relayed = await client.allocate(server!.username!, server!.credential!);
        expect(relayed.address).toBe(address);
        await expect(client.createPermission(address)).resolves.toBeUndefined();
        for (const refused of [other, '127.0.0.1', s.config.local.dnsAddress, '169.254.169.254']) {
          const err = await client.createPermission(refused).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect({ refused, code: (err as TurnErrorResponse | undefined)?.code }).toEqual({
            refused,
            code: 403,
          });
        }
      } finally {
        await client.close();
      }
      // coturn's own client, asking to relay to the other region's echo peer, gets 403 and no echo.
      const { code, output } = await relayedEcho(
        address,
        { username: server!.username!, credential: server!.credential! },
        other,
      );
      expect(code).not.toBe(0);
      expect(output).toMatch(/403 \(Forbidden IP\)/);
      expect(totals(output)?.received ?? 0).toBe(0);
    },
  );
});

// ---- Chromium forced through the relay ------------------------------------------------------------

interface SelectedPair {
  readonly localType: string;
  readonly localAddress: string;
  readonly remoteAddress: string;
  readonly bytesReceived: number;
}

/**
 * Records every RTCPeerConnection the page makes, so the test can read their stats without reaching
 * into the SDK (the demo knows nothing of this).
 */
const RECORD_PEER_CONNECTIONS = `(() => {
  const Native = window.RTCPeerConnection;
  const all = [];
  window.__peerConnections = all;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); all.push(this); }
  };
})();`;

/** The selected candidate pair of every live peer connection of the page (getStats). */
function selectedPairs(page: Page): Promise<SelectedPair[]> {
  return page.evaluate(async () => {
    const pcs = (window as unknown as { __peerConnections: RTCPeerConnection[] }).__peerConnections;
    const out: SelectedPair[] = [];
    for (const pc of pcs) {
      if (pc.connectionState !== 'connected') continue;
      const stats = await pc.getStats();
      const byId = new Map<string, Record<string, unknown>>();
      stats.forEach((s: Record<string, unknown>) => byId.set(s.id as string, s));
      for (const s of byId.values()) {
        if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
        const pair = byId.get(s.selectedCandidatePairId as string)!;
        const local = byId.get(pair.localCandidateId as string)!;
        const remote = byId.get(pair.remoteCandidateId as string)!;
        out.push({
          localType: String(local.candidateType),
          localAddress: String(local.address ?? local.ip),
          remoteAddress: String(remote.address ?? remote.ip),
          bytesReceived: Number(pair.bytesReceived ?? 0),
        });
      }
    }
    return out;
  });
}

async function openRelayDemo(name: string, room: string): Promise<Page> {
  const context = await browser!.newContext();
  await context.addInitScript(RECORD_PEER_CONNECTIONS);
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && pageProblems.push(`[${name}] console: ${m.text()}`));
  page.on('pageerror', (err) => pageProblems.push(`[${name}] page error: ${err.message}`));
  await page.goto(`${stack().state.dashboardUrl}demo/?room=${room}&name=${name}&relay=1`);
  await page.click('#join');
  return page;
}

async function pageLog(page: Page): Promise<string> {
  return (await page.locator('#log li').allTextContents()).join('\n');
}

/** Remote video decoded and still advancing (frames grow between two looks). */
async function expectRemoteVideoFlowing(page: Page, who: string): Promise<void> {
  const frames = () =>
    page.evaluate(() => {
      const video = document.querySelector<HTMLVideoElement>('figure.remote video');
      return video && video.videoWidth > 0 ? video.getVideoPlaybackQuality().totalVideoFrames : null;
    });
  try {
    const first = await eventually(`${who}: a decoded remote video`, frames, 40_000);
    await eventually(`${who}: the remote video to keep playing`, async () => ((await frames()) ?? 0) > first);
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\npage log:\n${await pageLog(page)}\n${pageProblems.join('\n')}`,
      {
        cause: err,
      },
    );
  }
}

/** Every live transport of the page goes through `relayAddress`'s relay, and media arrived on it. */
async function expectRelayedThrough(page: Page, relayAddress: string, who: string): Promise<SelectedPair[]> {
  return eventually(`${who}: every selected candidate pair relayed through ${relayAddress}`, async () => {
    const pairs = await selectedPairs(page);
    const ok =
      pairs.length >= 2 &&
      pairs.every((p) => p.localType === 'relay' && p.localAddress === relayAddress) &&
      pairs.some((p) => p.bytesReceived > 0);
    return ok ? pairs : null;
  });
}

describe('Chromium forced through the relay', () => {
  it("two pages exchange video through their region's relay and fail over through the other region's", async () => {
    const s = stack();
    const room = 'turn-chromium';
    const alice = await openRelayDemo('alice', room);
    await alice.waitForSelector('body[data-state="connected"]', { timeout: 40_000 });
    const bob = await openRelayDemo('bob', room);
    await bob.waitForSelector('body[data-state="connected"]', { timeout: 40_000 });
    const firstRegion = ((await alice.textContent('#region')) ?? '') as E2eRegion;
    expect(E2E_REGIONS).toContain(firstRegion);
    expect(await bob.textContent('#region')).toBe(firstRegion);

    await expectRemoteVideoFlowing(alice, 'alice');
    await expectRemoteVideoFlowing(bob, 'bob');
    for (const [page, who] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const) {
      const pairs = await expectRelayedThrough(page, s.address(firstRegion), who);
      // Relayed to the region's media server: the remote side is the region's address too.
      expect(pairs.every((p) => p.remoteAddress === s.address(firstRegion))).toBe(true);
    }

    // The whole region dies: its LB, media server and relay are SIGKILLed.
    const killed = (await s.control('POST', `/api/regions/${firstRegion}/kill`)) as {
      processes: { name: string; role: string; state: string }[];
    };
    expect(killed.processes.find((p) => p.role === 'turn')).toMatchObject({ state: 'held' });
    const otherRegion = E2E_REGIONS.find((r) => r !== firstRegion)!;
    for (const page of [alice, bob]) {
      await eventually(
        'the page to reconnect in the other region',
        async () =>
          (await page.getAttribute('body', 'data-state')) === 'connected' &&
          (await page.textContent('#region')) === otherRegion,
        60_000,
      );
    }
    await expectRemoteVideoFlowing(alice, 'alice after the failover');
    await expectRemoteVideoFlowing(bob, 'bob after the failover');
    for (const [page, who] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const) {
      const pairs = await expectRelayedThrough(page, s.address(otherRegion), `${who} after the failover`);
      expect(pairs.every((p) => p.remoteAddress === s.address(otherRegion))).toBe(true);
    }
    expect(pageProblems.filter((p) => p.includes('page error'))).toEqual([]);
  });
});
