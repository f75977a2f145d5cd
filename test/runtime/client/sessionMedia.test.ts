/**
 * Media restore across a rejoin, with real libwebrtc (@roamhq/wrtc) under mediasoup-client: the same
 * local track is produced on the next server with its muted state, operations issued while
 * reconnecting are queued and replayed, and remote producers are consumed again.
 */
import type { Client } from '../../../runtime/client/Client';
import { createNodeClient } from '../../../runtime/client/node';
import type { RemoteTrackEvent, TrackEndedEvent } from '../../../runtime/client/MediaConnection';
import { SyntheticVideoSource, installWrtcGlobals } from '../../support/wrtcPeer';
import { FakeLb, FakeMediaServer } from './fakeBackend';

const FAST = {
  timeouts: { attemptMs: 1_000, requestMs: 3_000, signalingPingMs: 200, signalingPongTimeoutMs: 1_000 },
  backoff: { baseMs: 50, capMs: 200, maxAttempts: 10, joinAttempts: 3 },
};

describe('Session media restore', () => {
  let lb: FakeLb;
  let a: FakeMediaServer;
  let b: FakeMediaServer;
  let client: Client;
  let camera: SyntheticVideoSource;

  beforeAll(() => installWrtcGlobals());
  beforeEach(async () => {
    a = await new FakeMediaServer('server-a', 'us-east-1').start();
    b = await new FakeMediaServer('server-b', 'eu-west-1').start();
    lb = await new FakeLb().start();
    lb.servers = [a, b].map((s) => ({ serverId: s.serverId, region: s.region, url: s.url }));
    client = createNodeClient({ apiUrls: [lb.url], ...FAST });
    camera = new SyntheticVideoSource(160, 120, 5);
  });
  afterEach(async () => {
    await client.close();
    camera.stop();
    await Promise.all([lb.close(), a.kill().catch(() => undefined), b.kill().catch(() => undefined)]);
  });

  it('produces the same track on the next server, with operations queued during the outage', async () => {
    const session = client.joinRoom('room-1', 'join-token', {
      produce: { video: camera.track },
      consume: false,
    });
    await session.ready;
    expect(a.requestsOf('produce')).toEqual([
      expect.objectContaining({
        data: expect.objectContaining({ kind: 'video', appData: { source: 'camera' } }),
      }),
    ]);
    await session.setMuted('video', true);
    const producerOnA = a.producers[0]!.producerId;
    expect(a.requestsOf('setProducerPaused').map((r) => r.data)).toEqual([
      { producerId: producerOnA, paused: true },
    ]);

    // Take server-b down too for a moment, so the outage lasts while the app keeps issuing controls.
    await b.kill();
    await a.kill();
    await session.next('reconnecting');
    const unmute = session.setMuted('video', false);
    const muteAgain = session.setMuted('video', true); // same key: replaces the queued unmute
    let settled = false;
    void Promise.all([unmute, muteAgain]).then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(settled).toBe(false);
    await b.start();

    const reconnected = await session.next('reconnected');
    expect(reconnected.serverId).toBe('server-b');
    await Promise.all([unmute, muteAgain]);
    const producedOnB = b.requestsOf('produce');
    expect(producedOnB).toHaveLength(1);
    const producerOnB = b.producers[0]!.producerId;
    // Restore applies the desired state (muted), the replayed queue applies it again: idempotent.
    expect(b.requestsOf('setProducerPaused').map((r) => r.data)).toEqual([
      { producerId: producerOnB, paused: true },
      { producerId: producerOnB, paused: true },
    ]);
    // The app's track survived the teardown of the old transports.
    expect(camera.track.readyState).toBe('live');
  });

  it('consumes remote producers, reports their end, and consumes again after a rejoin', async () => {
    a.seedRemoteProducer('video');
    const seededOnB = b.seedRemoteProducer('video');
    const session = client.joinRoom('room-1', 'join-token');
    const tracks: RemoteTrackEvent[] = [];
    const ended: TrackEndedEvent[] = [];
    session.on('remoteTrack', (e) => tracks.push(e));
    session.on('trackEnded', (e) => ended.push(e));
    const first = session.next('remoteTrack');
    await session.ready;
    // `joined` comes first, then the tracks of the producers already in the room.
    expect(await first).toMatchObject({ peerId: 'remote-peer', kind: 'video' });
    expect(tracks[0]!.track.kind).toBe('video');
    expect(a.requestsOf('resumeConsumer').map((r) => r.data)).toEqual([
      { consumerId: tracks[0]!.consumerId },
    ]);
    expect(session.remoteTracks.map((t) => t.consumerId)).toEqual([tracks[0]!.consumerId]);

    // A producer appearing later is consumed from its notification.
    const late = a.seedRemoteProducer('video');
    a.notifyAll('newProducer', late);
    expect(await session.next('remoteTrack')).toMatchObject({ producerId: late.producerId });
    a.notifyAll('producerClosed', { producerId: late.producerId, peerId: late.peerId, reason: 'closed' });
    expect(await session.next('trackEnded')).toMatchObject({
      producerId: late.producerId,
      reason: 'producer_closed',
    });

    const restored = session.next('remoteTrack');
    await a.kill();
    expect(await session.next('reconnected')).toMatchObject({ serverId: 'server-b' });
    expect(await restored).toMatchObject({ producerId: seededOnB.producerId });
    expect(ended.map((e) => e.reason)).toEqual(['producer_closed', 'reconnecting']);
    expect(session.remoteTracks.map((t) => t.producerId)).toEqual([seededOnB.producerId]);
  });

  it("reports each remote peer's identity and region, and tells a peer whose leg was lost from one that left", async () => {
    const local = a.seedRemoteProducer('video', { peerId: 'p-bob', identity: 'bob', region: 'us-east-1' });
    const piped = a.seedRemoteProducer('video', {
      peerId: 'p-carol',
      identity: 'carol',
      region: 'eu-west-1',
    });
    const session = client.joinRoom('room-1', 'join-token');
    const tracks: RemoteTrackEvent[] = [];
    session.on('remoteTrack', (e) => tracks.push(e));
    await session.ready;
    await waitUntil(() => tracks.length === 2);
    const byProducer = new Map(tracks.map((t) => [t.producerId, t]));
    expect(byProducer.get(local.producerId)).toMatchObject({
      peerId: 'p-bob',
      identity: 'bob',
      region: 'us-east-1',
    });
    expect(byProducer.get(piped.producerId)).toMatchObject({
      peerId: 'p-carol',
      identity: 'carol',
      region: 'eu-west-1',
    });
    expect(session.remoteTracks.map((t) => `${t.identity}@${t.region}`).sort()).toEqual([
      'bob@us-east-1',
      'carol@eu-west-1',
    ]);

    // Carol's leg is cut off: her track ends as lost, with who she was and where.
    a.notifyAll('producerClosed', { producerId: piped.producerId, peerId: 'p-carol', reason: 'leg_lost' });
    expect(await session.next('trackEnded')).toMatchObject({
      peerId: 'p-carol',
      identity: 'carol',
      region: 'eu-west-1',
      reason: 'peer_lost',
    });
    // Bob leaves on his own.
    a.notifyAll('peerLeft', { peerId: 'p-bob', reason: 'left' });
    expect(await session.next('trackEnded')).toMatchObject({
      identity: 'bob',
      region: 'us-east-1',
      reason: 'peer_left',
    });

    // Carol comes back from another region under a new peer id; a producer with a malformed region is
    // refused by name, not consumed.
    const back = a.seedRemoteProducer('video', {
      peerId: 'p-carol-2',
      identity: 'carol',
      region: 'us-east-1',
    });
    a.notifyAll('newProducer', back);
    expect(await session.next('remoteTrack')).toMatchObject({
      peerId: 'p-carol-2',
      identity: 'carol',
      region: 'us-east-1',
    });
    const warning = session.next('warning');
    a.notifyAll('newProducer', { ...back, producerId: 'bad-region', region: 'Mars' });
    expect((await warning).message).toMatch(
      /could not consume producer bad-region: .*region must be a region name/,
    );
    expect(a.requestsOf('consume').map((r) => r.data.producerId)).not.toContain('bad-region');
  });
});

async function waitUntil(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
