/**
 * Session join and rejoin against protocol-level fakes of the LB and media servers on real sockets.
 * These sessions carry no media (consume: false, no tracks), which is how chaos clients run; media
 * restore is covered in sessionMedia.test.ts.
 */
import type { Client } from '../../../runtime/client/Client';
import { ApiError } from '../../../runtime/client/errors';
import { createNodeClient } from '../../../runtime/client/node';
import type { ServedEvent } from '../../../runtime/client/ApiClient';
import type { ReconnectingEvent, Session, SessionEvents } from '../../../runtime/client/Session';
import { FakeLb, FakeMediaServer } from './fakeBackend';
import { type TestHttpServer, refusedUrl, startHttpServer } from './httpServers';

const FAST = {
  timeouts: { attemptMs: 1_000, requestMs: 2_000, signalingPingMs: 100, signalingPongTimeoutMs: 300 },
  backoff: { baseMs: 20, capMs: 100, maxAttempts: 10, joinAttempts: 3 },
};

/** Collects a session's events in order. */
function record(session: Session) {
  const events: Array<{ name: keyof SessionEvents; payload: unknown }> = [];
  for (const name of ['joined', 'reconnecting', 'reconnected', 'closed', 'error'] as const) {
    session.on(name, (payload) => events.push({ name, payload }));
  }
  return events;
}

describe('Session join and rejoin', () => {
  let lb: FakeLb;
  let a: FakeMediaServer;
  let b: FakeMediaServer;
  const clients: Client[] = [];

  beforeEach(async () => {
    a = await new FakeMediaServer('server-a', 'us-east-1').start();
    b = await new FakeMediaServer('server-b', 'eu-west-1').start();
    lb = await new FakeLb().start();
    lb.servers = [a, b].map((s) => ({ serverId: s.serverId, region: s.region, url: s.url }));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all([lb.close(), a.kill().catch(() => undefined), b.kill().catch(() => undefined)]);
  });

  function client(apiUrls = [lb.url]) {
    const c = createNodeClient({ apiUrls, ...FAST });
    clients.push(c);
    return c;
  }

  it('joins: join API, signaling socket, media token, joined event', async () => {
    const session = client().joinRoom('room-1', 'join-token', { consume: false, displayName: 'ada' });
    const events = record(session);
    const joined = await session.ready;
    expect(joined).toEqual({
      region: 'us-east-1',
      serverId: 'server-a',
      peerId: 'server-a-peer-1',
      apiUrl: lb.url,
      signalingUrl: `${a.url}/v1/rooms/room-1/signal`,
    });
    expect(events).toEqual([{ name: 'joined', payload: joined }]);
    expect(lb.joins).toEqual([{ auth: 'Bearer join-token', body: {} }]);
    expect(a.requestsOf('join')[0]!.data).toEqual({ token: 'media-server-a-1', displayName: 'ada' });
    expect(session.connectionState).toBe('connected');
    expect([session.region, session.serverId]).toEqual(['us-east-1', 'server-a']);
  });

  it('a client whose primary API URL is dead joins through the backup within one attempt', async () => {
    const dead = await refusedUrl();
    const session = client([dead, lb.url]).joinRoom('room-1', 'join-token', { consume: false });
    expect(await session.ready).toMatchObject({ apiUrl: lb.url, serverId: 'server-a' });
    expect(lb.joins).toHaveLength(1);
  });

  it('a rejected join token is final: no retry, error and closed', async () => {
    const session = client().joinRoom('room-1', 'stolen-token', { consume: false });
    const events = record(session);
    const err = await session.ready.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 401, code: 'token_invalid' });
    expect(lb.joins).toHaveLength(1);
    expect(events.map((e) => e.name)).toEqual(['error', 'closed']);
    expect(events[1]!.payload).toMatchObject({ reason: 'failed' });
    expect(session.connectionState).toBe('closed');
  });

  it('rejoins on another server when the socket closes, excluding the dead server', async () => {
    const tokens: string[] = [];
    const session = client().joinRoom('room-1', () => (tokens.push('join-token'), 'join-token'), {
      consume: false,
    });
    const events = record(session);
    await session.ready;
    await a.kill();
    const reconnected = await session.next('reconnected');
    expect(reconnected).toMatchObject({
      reason: 'signaling_closed',
      region: 'eu-west-1',
      serverId: 'server-b',
      attempts: 1,
      apiUrl: lb.url,
    });
    expect(reconnected.downtimeMs).toBeGreaterThanOrEqual(0);
    expect(reconnected.rejoinMs).toBeLessThanOrEqual(reconnected.downtimeMs);
    const reconnecting = events.find((e) => e.name === 'reconnecting')!.payload as ReconnectingEvent;
    expect(reconnecting).toMatchObject({
      reason: 'signaling_closed',
      attempt: 1,
      exclude: { serverIds: ['server-a'], regions: [] },
    });
    expect(reconnecting.delayMs).toBeLessThanOrEqual(FAST.backoff.baseMs);
    expect(lb.joins[1]!.body).toEqual({ exclude: { serverIds: ['server-a'] } });
    // A fresh join token for every join.
    expect(tokens).toHaveLength(2);
    expect(b.requestsOf('join')).toHaveLength(1);
    expect(session.serverId).toBe('server-b');
  });

  it('notices a hung server by unanswered pings', async () => {
    const session = client().joinRoom('room-1', 'join-token', { consume: false });
    await session.ready;
    a.silent = true;
    expect(await session.next('reconnecting')).toMatchObject({
      reason: 'ping_timeout',
      exclude: { serverIds: ['server-a'] },
    });
    expect(await session.next('reconnected')).toMatchObject({ serverId: 'server-b' });
  });

  it("follows a rejoin notice: a moved room is not the server's fault, a draining server is", async () => {
    const session = client().joinRoom('room-1', 'join-token', { consume: false });
    await session.ready;
    a.notifyAll('rejoin', { reason: 'room_moved', serverId: 'server-a' });
    expect(await session.next('reconnecting')).toMatchObject({
      reason: 'room_moved',
      exclude: { serverIds: [] },
    });
    // The LB still places the room on server-a: nothing was excluded.
    expect(await session.next('reconnected')).toMatchObject({ serverId: 'server-a' });
    a.notifyAll('rejoin', { reason: 'server_draining', serverId: 'server-a' });
    expect(await session.next('reconnecting')).toMatchObject({
      reason: 'server_draining',
      exclude: { serverIds: ['server-a'] },
    });
    expect(await session.next('reconnected')).toMatchObject({ serverId: 'server-b' });
  });

  it('excludes the region whose edge cannot even open a socket', async () => {
    const deadEdge = (await refusedUrl()).replace('http:', 'ws:');
    lb.servers = [
      { serverId: 'server-x', region: 'us-east-1', url: deadEdge },
      { serverId: 'server-y', region: 'us-east-1', url: deadEdge },
      { serverId: b.serverId, region: b.region, url: b.url },
    ];
    const session = client().joinRoom('room-1', 'join-token', { consume: false });
    expect(await session.ready).toMatchObject({ serverId: 'server-b', region: 'eu-west-1' });
    expect(lb.joins.map((j) => j.body)).toEqual([
      {},
      { exclude: { serverIds: ['server-x'], regions: ['us-east-1'] } },
    ]);
  });

  it("tries the same server's other name family when the signaling name is unreachable", async () => {
    const deadName = (await refusedUrl()).replace('http:', 'ws:');
    lb.servers = [
      { serverId: a.serverId, region: a.region, url: deadName, fallbackUrl: a.url },
      ...lb.servers,
    ];
    const session = client().joinRoom('room-1', 'join-token', { consume: false });
    const events = record(session);
    expect(await session.ready).toMatchObject({
      serverId: 'server-a',
      signalingUrl: `${a.url}/v1/rooms/room-1/signal`,
    });
    // One join: the fallback name reached the same server with the same media token, no rejoin.
    expect(lb.joins).toHaveLength(1);
    expect(a.upgrades.map((u) => u.token)).toEqual(['media-server-a-1']);
    expect(events.map((e) => e.name)).toEqual(['joined']);
  });

  it('rejoins elsewhere when neither name family of the signaling server answers', async () => {
    const deadName = (await refusedUrl()).replace('http:', 'ws:');
    const deadOther = (await refusedUrl()).replace('http:', 'ws:');
    lb.servers = [
      { serverId: 'server-x', region: 'us-east-1', url: deadName, fallbackUrl: deadOther },
      { serverId: b.serverId, region: b.region, url: b.url },
    ];
    const session = client().joinRoom('room-1', 'join-token', { consume: false });
    expect(await session.ready).toMatchObject({ serverId: 'server-b' });
    expect(lb.joins.map((j) => j.body)).toEqual([
      {},
      { exclude: { serverIds: ['server-x'], regions: ['us-east-1'] } },
    ]);
  });

  it('a refused media token only needs a fresh join, not another server', async () => {
    a.refuseJoins = 1;
    const session = client().joinRoom('room-1', 'join-token', { consume: false });
    expect(await session.ready).toMatchObject({ serverId: 'server-a' });
    expect(lb.joins.map((j) => j.body)).toEqual([{}, {}]);
    expect(a.requestsOf('join').map((r) => r.data.token)).toEqual(['media-server-a-1', 'media-server-a-2']);
  });

  it('comes back to a server that restarts on the same address when the LB has nowhere else', async () => {
    lb.servers = [{ serverId: a.serverId, region: a.region, url: a.url }];
    const session = client().joinRoom('room-1', 'join-token', { consume: false });
    const events = record(session);
    await session.ready;
    await a.kill();
    await session.next('reconnecting');
    // While server-a is down and excluded the LB answers 503; then the client drops its exclusions.
    await a.start();
    const reconnected = await session.next('reconnected');
    expect(reconnected).toMatchObject({ serverId: 'server-a' });
    expect(reconnected.attempts).toBeGreaterThanOrEqual(2);
    const attempts = events
      .filter((e) => e.name === 'reconnecting')
      .map((e) => (e.payload as ReconnectingEvent).exclude);
    expect(attempts[0]).toEqual({ serverIds: ['server-a'], regions: [] });
    expect(attempts.at(-1)).toEqual({ serverIds: [], regions: [] });
  });

  it('gives up after maxAttempts and closes', async () => {
    lb.servers = [{ serverId: a.serverId, region: a.region, url: a.url }];
    const c = createNodeClient({ apiUrls: [lb.url], ...FAST, backoff: { ...FAST.backoff, maxAttempts: 3 } });
    clients.push(c);
    const session = c.joinRoom('room-1', 'join-token', { consume: false });
    const events = record(session);
    await session.ready;
    await a.kill();
    const closed = await session.next('closed');
    expect(closed.reason).toBe('failed');
    expect(closed.error?.message).toMatch(/^gave up after 3 attempts; the last one failed with: /);
    expect(events.filter((e) => e.name === 'reconnecting')).toHaveLength(3);
    expect(events.filter((e) => e.name === 'error')).toHaveLength(1);
    expect(session.connectionState).toBe('closed');
  });

  it('controls issued while reconnecting wait for the next server, and resolve there', async () => {
    const session = client().joinRoom('room-1', 'join-token', { consume: false });
    await session.ready;
    await a.kill();
    await session.next('reconnecting');
    expect(session.connectionState).toBe('reconnecting');
    let applied = false;
    const muted = session.setMuted('audio', true).then(() => (applied = true));
    const noTrack = session.setTrack('video', null);
    expect(applied).toBe(false);
    await session.next('reconnected');
    await Promise.all([muted, noTrack]);
    expect(applied).toBe(true);
    // Without media nothing is sent, and no Device (WebRTC) was needed for it.
    expect(b.requestsOf('setProducerPaused')).toEqual([]);
  });

  it('leave tells the server and does not rejoin', async () => {
    const session = client().joinRoom('room-1', 'join-token', { consume: false });
    const events = record(session);
    await session.ready;
    await session.leave();
    expect(a.requestsOf('leave')).toHaveLength(1);
    expect(events.map((e) => e.name)).toEqual(['joined', 'closed']);
    expect(events[1]!.payload).toEqual({ reason: 'left' });
    await expect(session.setMuted('audio', true)).rejects.toThrow('closed');
    await session.leave(); // idempotent
  });

  it('reports RTTs with the join and uses region URLs after the API URLs', async () => {
    const dead = await refusedUrl();
    const c = createNodeClient({
      apiUrls: [dead],
      regionUrls: { 'eu-west-1': lb.url },
      ...FAST,
      rttElection: { samples: 2 },
    });
    clients.push(c);
    const session = c.joinRoom('room-1', 'join-token', { consume: false });
    expect(await session.ready).toMatchObject({ apiUrl: lb.url });
    expect(lb.joins[0]!.body.rtt).toEqual({ 'eu-west-1': expect.any(Number) });
  });

  describe("the join answer's alternates", () => {
    const others: Array<FakeLb | TestHttpServer> = [];
    afterEach(async () => {
      await Promise.all(others.splice(0).map((o) => o.close()));
    });

    async function regionLb(servers: FakeMediaServer[]) {
      const regional = await new FakeLb().start();
      regional.servers = servers.map((s) => ({ serverId: s.serverId, region: s.region, url: s.url }));
      others.push(regional);
      return regional;
    }

    it('carry a rejoin to a surviving region when both configured API URLs fail', async () => {
      const euLb = await regionLb([b]);
      lb.alternates = [{ region: 'eu-west-1', apiUrl: euLb.url }];
      const blackholed = await startHttpServer(() => undefined);
      others.push(blackholed);
      // The two names only, no region URLs: the answer's alternates are all this client can learn.
      const c = createNodeClient({
        apiUrls: [lb.url, blackholed.url],
        ...FAST,
        timeouts: { ...FAST.timeouts, hedgeMs: 200 },
      });
      clients.push(c);
      const session = c.joinRoom('room-1', 'join-token', { consume: false });
      expect(await session.ready).toMatchObject({ apiUrl: lb.url, serverId: 'server-a' });
      expect(c.api.urls).toEqual([lb.url, blackholed.url, euLb.url]);

      const served: ServedEvent[] = [];
      c.api.on('served', (e) => served.push(e));
      await lb.close();
      await a.kill();
      expect(await session.next('reconnected')).toMatchObject({
        apiUrl: euLb.url,
        region: 'eu-west-1',
        serverId: 'server-b',
      });
      expect(euLb.joins.map((j) => j.body)).toEqual([{ exclude: { serverIds: ['server-a'] } }]);
      // Both configured URLs were asked first: the refused one failed, the blackholed one was hedged.
      expect(served[0]!.attempts.map((x) => [x.url, x.outcome])).toEqual([
        [lb.url, 'network_error'],
        [euLb.url, 'ok'],
      ]);
      expect(blackholed.hits).toEqual(['POST /v1/rooms/room-1/join']);
    });

    it('are left alone by a client that follows its configured names only', async () => {
      lb.alternates = [{ region: 'eu-west-1', apiUrl: 'http://127.0.0.2:8080' }];
      const c = createNodeClient({ apiUrls: [lb.url], ...FAST, followAlternates: false });
      clients.push(c);
      expect(await c.joinRoom('room-1', 'join-token', { consume: false }).ready).toMatchObject({
        apiUrl: lb.url,
      });
      expect(c.api.urls).toEqual([lb.url]);
    });

    it('that are malformed are ignored with a warning, the rest of the answer is used', async () => {
      lb.alternates = [
        { region: 'eu-west-1', apiUrl: 'ftp://127.0.0.1:21' },
        { region: 'ap-southeast-1', apiUrl: 'http://127.0.0.3:8080/?region=ap' },
        { region: 'sa-east-1', apiUrl: 'not a url' },
        { apiUrl: 'http://127.0.0.4:8080' },
        'us-west-2',
        { region: 'eu-west-1', apiUrl: 'http://127.0.0.2:8080/' },
        { region: 'ap-southeast-1', apiUrl: 'https://127.0.0.3' },
        { region: 'sa-east-1', apiUrl: 'http://127.0.0.5:8080' },
        // A fourth usable one: beyond what DESIGN.md promises, so not used.
        { region: 'us-west-2', apiUrl: 'http://127.0.0.6:8080' },
      ];
      const session = client().joinRoom('room-1', 'join-token', { consume: false });
      const warnings: string[] = [];
      session.on('warning', ({ message }) => warnings.push(message));
      expect(await session.ready).toMatchObject({ apiUrl: lb.url, serverId: 'server-a' });
      expect(lb.joins).toHaveLength(1);
      expect(clients[0]!.api.urls).toEqual([
        lb.url,
        'http://127.0.0.2:8080',
        'https://127.0.0.3',
        'http://127.0.0.5:8080',
      ]);
      expect(warnings).toHaveLength(1);
      for (const index of [0, 1, 2, 3, 4, 8]) expect(warnings[0]).toContain(`alternates.${index}:`);
      expect(warnings[0]).not.toContain('alternates.5:');
    });

    it('leave the API URL of a region the rejoin excludes for last', async () => {
      const deadEdge = (await refusedUrl()).replace('http:', 'ws:');
      lb.servers = [{ serverId: 'server-x', region: 'us-east-1', url: deadEdge }];
      // us-east-1's LB would answer too (it honours the exclusion), but its edge just failed us.
      const usLb = await regionLb([b]);
      const euLb = await regionLb([b]);
      lb.alternates = [
        { region: 'us-east-1', apiUrl: usLb.url },
        { region: 'eu-west-1', apiUrl: euLb.url },
      ];
      const session = client().joinRoom('room-1', 'join-token', { consume: false });
      expect(await session.ready).toMatchObject({ apiUrl: euLb.url, serverId: 'server-b' });
      // The configured LB has nothing outside us-east-1 (503), the alternate of us-east-1 is skipped.
      expect(lb.joins.map((j) => j.body)).toEqual([
        {},
        { exclude: { serverIds: ['server-x'], regions: ['us-east-1'] } },
      ]);
      expect(usLb.joins).toEqual([]);
      expect(euLb.joins).toHaveLength(1);
    });
  });
});
