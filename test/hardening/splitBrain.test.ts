/**
 * Split brain: a reduced local stack (three regions, one media server each, the emulated global table)
 * with replication lag raised to 2 s, and one room joined at the same moment through each region's LB
 * by an SDK client pinned to that region. Each LB places the room on its own region's server (its
 * replica has not seen the others' writes yet), so the room starts split three ways. Then the global
 * table settles the room item (last writer wins); each losing server sees on its next room check that
 * the room item is another region's and makes its room that region's leg (cascading: a leg item only
 * its region writes), and the legs find each other through the table and pipe to each other. No peer
 * moves: the room converges on one leg per region and a full pipe mesh.
 *
 * The bound this test states: LAG_MS (the room item reaches every replica) + ROOM_CHECK_INTERVAL_MS
 * (the losers look) + REJOIN_SLACK_MS (the leg items replicate, the legs connect their pipes).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDeploymentConfig } from '../../lib/config';
import type { Client } from '../../runtime/client/Client';
import { createNodeClient } from '../../runtime/client/node';
import type { Session } from '../../runtime/client/Session';
import { startLocalStack, type LocalStack } from '../../runtime/local/stack';

jest.setTimeout(120_000);

const ROOM = 'split-room';
const LAG_MS = 2_000;
/** The media server's default (runtime/media/env.ts); the local stack does not change it. */
const ROOM_CHECK_INTERVAL_MS = 5_000;
const REJOIN_SLACK_MS = 10_000;
const CONVERGENCE_BOUND_MS = LAG_MS + ROOM_CHECK_INTERVAL_MS + REJOIN_SLACK_MS;

/** Addresses 127.0.111-113.1 and DNS/dashboard on 127.0.110.1: outside the e2e slots' 127.0.<slot>1-2.1. */
const config = parseDeploymentConfig({
  local: {
    addresses: { 'us-east-1': '127.0.111.1', 'eu-west-1': '127.0.112.1', 'ap-southeast-1': '127.0.113.1' },
    dnsAddress: '127.0.110.1',
    lbPort: 18080,
    dynamoPort: 18000,
    mediaPortBase: 19000,
    mediaServersPerRegion: 1,
    dnsPort: 16353,
    backupDnsPort: 16354,
    dashboardPort: 16300,
    dnsTtlSeconds: 1,
    healthCheckIntervalSeconds: 1,
    replicationLagMs: 100,
  },
});

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'split-brain-'));
let stack: LocalStack | undefined;
const clients: Client[] = [];

beforeAll(async () => {
  stack = await startLocalStack({ config, stateDir });
  await stack.waitHealthy(60_000);
}, 90_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await stack?.stop();
  fs.rmSync(stateDir, { recursive: true, force: true });
}, 30_000);

async function peersOn(serverId: string): Promise<number> {
  const region = stack!.state().regions.find((r) => r.media.some((m) => m.id === serverId))!;
  const media = region.media.find((m) => m.id === serverId)!;
  const metrics = await (await fetch(`http://${region.address}:${media.signalingPort}/metrics`)).text();
  return Number(/^media_peers\{[^}]*\} (\d+)$/m.exec(metrics)?.[1] ?? NaN);
}

async function cascadeOf(serverId: string): Promise<{ channels: number; connected: number }> {
  const region = stack!.state().regions.find((r) => r.media.some((m) => m.id === serverId))!;
  const media = region.media.find((m) => m.id === serverId)!;
  const health = (await (await fetch(`http://${region.address}:${media.signalingPort}/health`)).json()) as {
    cascade: { channels: number; connected: number };
  };
  return health.cascade;
}

test(`a room joined through all three regions at once converges on one leg per region and a full pipe mesh within ${CONVERGENCE_BOUND_MS} ms`, async () => {
  const s = stack!;
  const regions = s.state().regions;
  s.dynamo.setLag(LAG_MS);

  const sessions: Session[] = [];
  for (const region of regions) {
    const client = createNodeClient({ apiUrls: [region.lbUrl], rttElection: false });
    clients.push(client);
    const token = await s.devToken(ROOM, `peer-${region.name}`);
    sessions.push(client.joinRoom(ROOM, token, { consume: false, displayName: region.name }));
  }
  const joined = await Promise.all(sessions.map((session) => session.ready));
  const convergeFrom = Date.now();
  // The split happened: each LB placed the room in its own region (each wrote a room item).
  expect(new Set(joined.map((j) => j.serverId)).size).toBe(regions.length);
  expect(joined.map((j) => j.region).sort()).toEqual(regions.map((r) => r.name).sort());
  const expectedLegs = new Map(joined.map((j) => [j.region, j.serverId]));

  // Converged: every replica shows one leg per region, on the server its peer joined, and every
  // server has a connected pipe to both others. No peer moved.
  const view = async () => {
    const legs = await Promise.all(
      regions.map(async (r) => {
        const { legs } = await s.storeFor(r.name).legs.ofRoom(ROOM);
        return new Map([...legs].map(([region, leg]) => [region, leg.serverId]));
      }),
    );
    const mesh = await Promise.all(joined.map((j) => cascadeOf(j.serverId)));
    const peers = await Promise.all(joined.map((j) => peersOn(j.serverId)));
    return { legs, mesh: mesh.map((m) => m.connected), peers };
  };
  const want = {
    legs: regions.map(() => expectedLegs),
    mesh: joined.map(() => regions.length - 1),
    peers: joined.map(() => 1),
  };
  let last = await view();
  while (Date.now() - convergeFrom < CONVERGENCE_BOUND_MS) {
    last = await view();
    if (JSON.stringify(serializable(last)) === JSON.stringify(serializable(want))) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const tookMs = Date.now() - convergeFrom;
  expect(serializable(last)).toEqual(serializable(want));
  expect(sessions.map((session) => session.serverId)).toEqual(joined.map((j) => j.serverId));
  console.log(
    `split brain: joined on ${joined.map((j) => j.serverId).join(', ')}; one leg per region and a full pipe mesh ${tookMs} ms after the joins (bound ${CONVERGENCE_BOUND_MS} ms)`,
  );
  await Promise.all(sessions.map((session) => session.leave()));
});

function serializable(v: { legs: Map<string, string>[]; mesh: number[]; peers: number[] }) {
  return { ...v, legs: v.legs.map((m) => Object.fromEntries([...m].sort())) };
}
