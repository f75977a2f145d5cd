/**
 * A client's "this server failed" is a hint, never a command. Before, any joiner that listed a room's
 * live server in `exclude.serverIds` (or its region in `exclude.regions`) moved the room and kicked
 * every peer to rejoin; repeated, it flapped the room forever (version 1 → 4 in three joins with both
 * servers healthy). Now the LB probes the named server itself (through its own region's private
 * endpoint, or another region's LB), takes the room over only when the server does not answer, and
 * does not move a room that moved moments ago on a probe alone.
 *
 * Real media servers answer the probes (their signaling app's /health); two LBs of two regions share
 * one table, as replicas of one global table do.
 */
import type { AddressInfo } from 'node:net';
import { TAKEOVER_COOLDOWN_MS } from '../../runtime/lb/Placement';
import { join, joinToken, mediaServer, startLb, type LbHarness } from '../runtime/lb/lbHarness';
import { startInProcessMediaServer, type InProcessMediaServer } from './mediaHarness';

jest.setTimeout(60_000);

let eu: LbHarness;
let us: LbHarness;
let euMedia: InProcessMediaServer;
let usMedia: InProcessMediaServer;
let usLbUrl: string;

/** Registers a real media server's record in the shared table under `id`, heartbeating at T0. */
async function register(
  id: string,
  region: string,
  media: InProcessMediaServer | null,
  heartbeatAt?: number,
) {
  const endpoint = media ? `ws://127.0.0.1:${media.port}` : 'ws://127.0.0.1:1';
  await eu.admin.servers.put(
    mediaServer(id, region, { endpoint, ...(heartbeatAt !== undefined && { heartbeatAt }) }),
  );
}

beforeAll(async () => {
  eu = await startLb({ region: 'eu-west-1' });
  us = await startLb({ region: 'us-east-1', dynamo: eu.dynamo });
  await us.app.listen({ host: '127.0.0.1', port: 0 });
  usLbUrl = `http://127.0.0.1:${(us.app.server.address() as AddressInfo).port}`;
  euMedia = await startInProcessMediaServer({ serverId: 'eu-a', rtcMinPort: 27_000, rtcMaxPort: 27_019 });
  usMedia = await startInProcessMediaServer({ serverId: 'us-a', rtcMinPort: 27_020, rtcMaxPort: 27_039 });
  await register('eu-a', 'eu-west-1', euMedia);
  await register('eu-b', 'eu-west-1', null);
  await register('us-a', 'us-east-1', usMedia);
  await eu.admin.regions.putSummary({
    region: 'us-east-1',
    apiUrl: usLbUrl,
    liveServers: 1,
    load: 0,
    capacity: 100,
    reportedAt: eu.clock.now(),
  });
  await eu.app.fleet.refresh();
  await us.app.fleet.refresh();
});

afterAll(async () => {
  await us?.close();
  await eu?.close();
  await euMedia?.close();
  await usMedia?.close();
});

async function roomOf(room: string) {
  return eu.admin.rooms.get(room);
}

async function claim(room: string, exclude: { serverIds?: string[]; regions?: string[] }, sub = 'mallory') {
  return join(eu, room, { token: await joinToken(room, sub), body: { exclude } });
}

test('a claim against a live server of this region is answered with that server; the room never moves', async () => {
  await eu.admin.rooms.place({ roomId: 'victim', serverId: 'eu-a', region: 'eu-west-1' });
  for (const exclude of [{ serverIds: ['eu-a'] }, { regions: ['eu-west-1'] }, { serverIds: ['eu-a'] }]) {
    const res = await claim('victim', exclude);
    expect(res.statusCode).toBe(200);
    expect(res.json().serverId).toBe('eu-a');
  }
  expect(await roomOf('victim')).toMatchObject({ serverId: 'eu-a', version: 1 });
});

test("a claim against another region's live server is checked through that region's LB", async () => {
  await eu.admin.rooms.place({ roomId: 'far-room', serverId: 'us-a', region: 'us-east-1' });
  // The claimant excludes its own region too, so it is not given a leg of its own (cascading) and
  // the room's server is what it asks about.
  const res = await claim('far-room', { serverIds: ['us-a'], regions: ['us-east-1', 'eu-west-1'] });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toMatchObject({ serverId: 'us-a', region: 'us-east-1' });
  expect(await roomOf('far-room')).toMatchObject({ serverId: 'us-a', version: 1 });
  // The other region's LB answers the probe from its own network.
  const probe = await fetch(`${usLbUrl}/v1/servers/us-a/health`);
  expect(probe.status).toBe(200);
  expect(await probe.json()).toMatchObject({ serverId: 'us-a', alive: true });
});

test('an exclusion still steers the claimant: its new rooms and alternates avoid what it excluded', async () => {
  const res = await claim('fresh-room', { serverIds: ['eu-a'], regions: ['us-east-1'] });
  expect(res.statusCode).toBe(200);
  expect(res.json().serverId).toBe('eu-b');
  expect(res.json().alternates.map((a: { region: string }) => a.region)).not.toContain('us-east-1');
});

test('a server that stopped answering loses its room at once, on a claim, before its heartbeat expires', async () => {
  await register('eu-c', 'eu-west-1', euMedia);
  await eu.admin.rooms.place({ roomId: 'real-failure', serverId: 'eu-c', region: 'eu-west-1' });
  // eu-c's address answers with another server's id: a replaced host, not eu-c.
  await eu.app.fleet.refresh();
  const res = await claim('real-failure', { serverIds: ['eu-c'] }, 'honest');
  expect(res.statusCode).toBe(200);
  expect(res.json().serverId).not.toBe('eu-c');
  expect(await roomOf('real-failure')).toMatchObject({ version: 2 });
  const metrics = (await eu.app.inject({ method: 'GET', url: '/metrics' })).body;
  expect(metrics).toMatch(/lb_takeovers_total\{evidence="probe",region="eu-west-1"\} 1/);
});

test('a room that moved moments ago is not moved again on a probe alone (503 + Retry-After), but is once the cooldown passes', async () => {
  // Moved once already (version 2), now onto eu-b, whose endpoint answers nothing.
  await eu.admin.rooms.place({ roomId: 'bouncing', serverId: 'eu-a', region: 'eu-west-1' });
  await eu.admin.rooms.place({
    roomId: 'bouncing',
    serverId: 'eu-b',
    region: 'eu-west-1',
    expectedVersion: 1,
  });
  const refused = await claim('bouncing', { serverIds: ['eu-b'] }, 'honest');
  expect(refused.statusCode).toBe(503);
  expect(refused.json().error.code).toBe('room_recovering');
  expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect(await roomOf('bouncing')).toMatchObject({ serverId: 'eu-b', version: 2 });
  eu.clock.advance(TAKEOVER_COOLDOWN_MS);
  await register('eu-a', 'eu-west-1', euMedia, eu.clock.now());
  await register('us-a', 'us-east-1', usMedia, eu.clock.now());
  await eu.app.fleet.refresh();
  const moved = await claim('bouncing', { serverIds: ['eu-b'] }, 'honest');
  expect(moved.statusCode).toBe(200);
  expect(await roomOf('bouncing')).toMatchObject({ version: 3 });
});

test('the probe endpoint answers only for its own region, and 503 for a server that does not answer', async () => {
  expect((await fetch(`${usLbUrl}/v1/servers/eu-a/health`)).status).toBe(404);
  expect((await fetch(`${usLbUrl}/v1/servers/ghost/health`)).status).toBe(404);
  expect((await fetch(`${usLbUrl}/v1/servers/${encodeURIComponent('../x')}/health`)).status).toBe(400);
  await eu.admin.servers.put(mediaServer('us-dead', 'us-east-1', { endpoint: 'ws://127.0.0.1:1' }));
  const dead = await fetch(`${usLbUrl}/v1/servers/us-dead/health`);
  expect(dead.status).toBe(503);
  expect(await dead.json()).toMatchObject({ serverId: 'us-dead', alive: false });
});

test("a claim against another region's server that region's LB finds gone moves the room; one it finds alive does not", async () => {
  // Fresh heartbeat, active region: the only evidence the server is gone is the probe through us-east-1's
  // LB, which asks the server's endpoint (nothing listens there) from its own network.
  await eu.admin.servers.put(
    mediaServer('us-gone', 'us-east-1', { endpoint: 'ws://127.0.0.1:1', heartbeatAt: eu.clock.now() }),
  );
  await eu.app.fleet.refresh();
  await us.app.fleet.refresh();
  await eu.admin.rooms.place({ roomId: 'far-failure', serverId: 'us-gone', region: 'us-east-1' });
  await eu.admin.rooms.place({ roomId: 'far-alive', serverId: 'us-a', region: 'us-east-1' });
  const probes = async (verdict: string) => {
    const text = (await eu.app.inject({ method: 'GET', url: '/metrics' })).body;
    return Number(
      new RegExp(`lb_server_probes_total\\{[^}]*verdict="${verdict}"[^}]*\\} (\\d+)`).exec(text)?.[1] ?? 0,
    );
  };
  const [gone, alive] = [await probes('gone'), await probes('alive')];

  const moved = await claim(
    'far-failure',
    { serverIds: ['us-gone'], regions: ['us-east-1', 'eu-west-1'] },
    'honest',
  );
  expect(moved.statusCode).toBe(200);
  expect(moved.json().region).toBe('eu-west-1');
  expect(await roomOf('far-failure')).toMatchObject({ region: 'eu-west-1', version: 2 });
  expect(await probes('gone')).toBe(gone + 1);

  const kept = await claim('far-alive', { serverIds: ['us-a'], regions: ['us-east-1', 'eu-west-1'] });
  expect(kept.json()).toMatchObject({ serverId: 'us-a', region: 'us-east-1' });
  expect(await roomOf('far-alive')).toMatchObject({ serverId: 'us-a', version: 1 });
  expect(await probes('alive')).toBe(alive + 1);
});
