/**
 * The rejoin promise end to end: two Node peers (the SDK over real libwebrtc) in one room on the local
 * stack, each sending synthetic video; the room's media server is SIGKILLed through the control API;
 * both sessions rejoin through the API by themselves, land together on another server, and pictures
 * flow again (decoded frames keep growing on fresh remote tracks).
 */
import type { Client } from '../../runtime/client/Client';
import type { RemoteTrackEvent } from '../../runtime/client/MediaConnection';
import { createNodeClient } from '../../runtime/client/node';
import type { ReconnectedEvent, ReconnectingEvent, Session } from '../../runtime/client/Session';
import { installWrtcGlobals, SyntheticVideoSource, VideoFrameCounter } from '../support/wrtcPeer';
import { eventually, startE2eStack, type E2eStack } from './stackHarness';

const ROOM = 'e2e-rejoin';
/** Decoded frames that count as "media flows" (about a second of the synthetic 15 fps source). */
const FLOWING_FRAMES = 15;

jest.setTimeout(90_000);

let e2e: E2eStack | undefined;
const clients: Client[] = [];
const stoppables: Array<{ stop(): void }> = [];

beforeAll(async () => {
  installWrtcGlobals();
  e2e = await startE2eStack({ slot: 5, mediaPerRegion: 1 });
}, 90_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  for (const s of stoppables) s.stop();
  await e2e?.stop();
}, 30_000);

function stack(): E2eStack {
  if (!e2e) throw new Error('the stack did not start (see beforeAll)');
  return e2e;
}

/** One participant: an SDK client near us-east-1 resolving api.mr.test through the DNS emulator. */
class Participant {
  readonly reconnecting: ReconnectingEvent[] = [];
  readonly reconnected: ReconnectedEvent[] = [];
  /** Decoded-frame counters of the remote video tracks, newest last. */
  readonly remoteVideo: Array<{ track: RemoteTrackEvent; counter: VideoFrameCounter; at: number }> = [];
  readonly session: Session;

  constructor(
    readonly name: string,
    token: string,
  ) {
    const s = stack();
    const client = createNodeClient({
      apiUrls: [`http://api.mr.test:${s.config.local.lbPort}`],
      dns: { server: `${s.dnsServer}:${s.dnsPort}`, maxCacheSeconds: 0 },
      localAddress: s.clientAddress('us-east-1'),
    });
    clients.push(client);
    const camera = new SyntheticVideoSource(320, 240, 15);
    stoppables.push(camera);
    this.session = client.joinRoom(ROOM, token, { produce: { video: camera.track }, displayName: name });
    this.session.on('reconnecting', (e) => this.reconnecting.push(e));
    this.session.on('reconnected', (e) => this.reconnected.push(e));
    this.session.on('remoteTrack', (track) => {
      if (track.kind !== 'video') return;
      const counter = new VideoFrameCounter(track.track);
      stoppables.push(counter);
      this.remoteVideo.push({ track, counter, at: Date.now() });
    });
  }

  /** Frames decoded on the newest remote video track received at or after `since`. */
  framesSince(since: number): number {
    const latest = this.remoteVideo.filter((v) => v.at >= since).at(-1);
    return latest ? latest.counter.frames : 0;
  }
}

describe('rejoin after the media server dies', () => {
  it('both peers come back on another server with media flowing, without user action', async () => {
    const s = stack();
    const alice = new Participant('alice', await s.stack.devToken(ROOM, 'alice'));
    const aliceJoined = await alice.session.ready;
    const bob = new Participant('bob', await s.stack.devToken(ROOM, 'bob'));
    const bobJoined = await bob.session.ready;
    expect(aliceJoined.region).toBe('us-east-1');
    expect(bobJoined.serverId).toBe(aliceJoined.serverId);
    const deadServer = aliceJoined.serverId;

    await eventually('video to flow both ways', () =>
      [alice, bob].every((p) => p.framesSince(0) >= FLOWING_FRAMES),
    );
    for (const p of [alice, bob]) {
      const remote = p.remoteVideo.at(-1)!;
      expect(remote.counter.lastWidth).toBe(320);
      expect(remote.track.peerId).not.toBe(p.session.peerId);
    }

    const killedAt = Date.now();
    await s.control('POST', `/api/processes/${deadServer}/kill`);

    await eventually(
      'both sessions to report reconnected',
      () => alice.reconnected.length > 0 && bob.reconnected.length > 0,
      45_000,
    );
    for (const p of [alice, bob]) {
      expect(p.reconnecting[0]).toMatchObject({ attempt: 1 });
      expect(['signaling_closed', 'ping_timeout', 'request_timeout', 'ice_failed']).toContain(
        p.reconnecting[0]!.reason,
      );
      expect(p.reconnected[0]!.serverId).not.toBe(deadServer);
      expect(p.reconnected[0]!.downtimeMs).toBeGreaterThanOrEqual(0);
      expect(p.session.connectionState).toBe('connected');
    }
    // Where the room goes is the LB's placement policy (runtime/lb/Placement.ts); what matters here is
    // that both peers meet again on one live server.
    const { serverId: newServer, region: newRegion } = alice.reconnected[0]!;
    expect(bob.reconnected[0]!.serverId).toBe(newServer);
    expect(s.state.regions.find((r) => r.name === newRegion)?.media.map((m) => m.id)).toContain(newServer);

    // Media flows again on fresh consumers created after the rejoin.
    await eventually('video to flow both ways on the new server', () =>
      [alice, bob].every((p) => p.framesSince(killedAt) >= FLOWING_FRAMES),
    );
    const aliceFrames = alice.framesSince(killedAt);
    await eventually('frames to keep growing', () => alice.framesSince(killedAt) > aliceFrames);

    // The store agrees: the room was taken over by the survivor (a conditional write bumps its version).
    const room = await eventually('the takeover to reach us-east-1', async () => {
      const found = await s.stack.storeFor('us-east-1').rooms.get(ROOM);
      return found?.serverId === newServer ? found : null;
    });
    expect(room).toMatchObject({ serverId: newServer, region: newRegion });
    expect(room.version).toBeGreaterThan(1);

    await Promise.all([alice.session.leave(), bob.session.leave()]);
  });
});
