/**
 * The failure detector and the make-before-break switch on real calls: two SDK sessions over real
 * libwebrtc (@roamhq/wrtc) sending synthetic video and audio through real mediasoup servers, their
 * signaling through a relay the test can freeze or jitter (test/support/faultyPath.ts), the join API a
 * protocol-level stand-in that mints real media tokens.
 *
 * - A frozen server (worker SIGSTOPped, signaling held: sockets open, nothing answers) is detected
 *   from the real stats and the missed ping, both peers switch to the other server with the same
 *   tracks, and each sees the other's video again.
 * - A freeze that ends before the switch is ready is ridden out: the new server never sees the peer.
 * - One remote peer going quiet is that peer's problem: no switch.
 * - No false switch: a muted call (both peers, audio and video) under a detector whose clock runs 5x
 *   faster than the wall clock (60 s of real call = 5 minutes of detector time; every real silence
 *   and ping delay looks 5x longer, so the detector's thresholds are harder to stay under than in a
 *   real 5-minute call), and a 1-minute call with 300 ms of jitter on signaling and media.
 *
 * It measures timing on real media, so it runs alone on the machine (test/support/suiteLock.ts):
 * @exclusive-suite
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '../../../runtime/client/Client';
import type { RemoteTrackEvent } from '../../../runtime/client/MediaConnection';
import { parseClientConfig } from '../../../runtime/client/config';
import { createNodeClient } from '../../../runtime/client/node';
import type { ReconnectedEvent, Session, SuspectedServerEvent } from '../../../runtime/client/Session';
import { nowMs } from '../../../runtime/client/timers';
import { startInProcessMediaServer, type InProcessMediaServer } from '../../hardening/mediaHarness';
import { SignalingPath } from '../../support/faultyPath';
import {
  installWrtcGlobals,
  SyntheticAudioSource,
  SyntheticVideoSource,
  VideoFrameCounter,
  waitFor,
} from '../../support/wrtcPeer';
import { FakeLb } from './fakeBackend';

jest.setTimeout(120_000);

const ROOM = 'switchover';
const DETECTION_DEFAULTS = (() => {
  const { detection } = parseClientConfig({ apiUrls: ['http://127.0.0.1:1'] });
  if (!detection) throw new Error('detection is on by default');
  return detection;
})();
/** Decoded frames that count as "video flows" (about a second of the 15 fps source). */
const FLOWING_FRAMES = 15;

interface Backend {
  readonly server: InProcessMediaServer;
  readonly path: SignalingPath;
  frozen: boolean;
}

let a: Backend;
let b: Backend;
let lb: FakeLb;
const clients: Client[] = [];
const stoppables: Array<{ stop(): void }> = [];

function workerPid(server: InProcessMediaServer): number {
  const pool = (server.running.server as unknown as { pool: { alive: Array<{ pid: number }> } }).pool;
  return pool.alive[0]!.pid;
}

/** A frozen process: media stops (worker stopped), signaling frames are held, no socket closes. */
function freeze(backend: Backend): void {
  backend.frozen = true;
  backend.path.freeze();
  process.kill(workerPid(backend.server), 'SIGSTOP');
}

function thaw(backend: Backend): void {
  if (!backend.frozen) return;
  backend.frozen = false;
  process.kill(workerPid(backend.server), 'SIGCONT');
  backend.path.thaw();
}

async function startBackend(
  serverId: string,
  rtcMinPort: number,
  jitter: { jitterMs?: number; mediaJitterMs?: number },
): Promise<Backend> {
  const server = await startInProcessMediaServer({ serverId, rtcMinPort, rtcMaxPort: rtcMinPort + 99 });
  const path = await new SignalingPath({ target: `ws://127.0.0.1:${server.port}`, ...jitter }).start();
  return { server, path, frozen: false };
}

async function startWorld(jitter: { jitterMs?: number; mediaJitterMs?: number } = {}): Promise<void> {
  installWrtcGlobals();
  a = await startBackend('switch-a', 47_200, jitter);
  b = await startBackend('switch-b', 47_300, jitter);
  lb = await new FakeLb().start();
  lb.servers = [a, b].map((x, i) => ({
    serverId: x.server.serverId,
    region: i === 0 ? 'us-east-1' : 'eu-west-1',
    url: x.path.url,
  }));
  const byId = new Map([a, b].map((x) => [x.server.serverId, x.server]));
  lb.mintMediaToken = (serverId, room, joinToken) =>
    byId.get(serverId)!.mediaToken(room, randomUUID(), { identity: joinToken });
}

async function stopWorld(): Promise<void> {
  for (const x of [a, b]) if (x) thaw(x);
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  for (const s of stoppables.splice(0)) s.stop();
  await lb?.close();
  for (const x of [a, b]) {
    if (!x) continue;
    await x.path.close();
    await x.server.close();
  }
}

/** One participant: an SDK session sending synthetic video and audio, counting remote frames. */
class Participant {
  readonly suspected: SuspectedServerEvent[] = [];
  readonly reconnected: ReconnectedEvent[] = [];
  readonly cancelled: unknown[] = [];
  readonly warnings: string[] = [];
  readonly remoteVideo: Array<{ track: RemoteTrackEvent; counter: VideoFrameCounter; at: number }> = [];
  readonly session: Session;
  readonly camera = new SyntheticVideoSource(160, 120, 15);
  readonly mic = new SyntheticAudioSource();

  constructor(
    readonly name: string,
    options: { detectorClock?: () => number; detection?: Record<string, number> } = {},
  ) {
    const client = createNodeClient(
      {
        apiUrls: [lb.url],
        timeouts: { attemptMs: 2_000, requestMs: 5_000 },
        backoff: { baseMs: 50, capMs: 500, maxAttempts: 20, joinAttempts: 3 },
        ...(options.detection ? { detection: options.detection } : {}),
      },
      undefined,
      { detectorClock: options.detectorClock },
    );
    clients.push(client);
    stoppables.push(this.camera, this.mic);
    this.session = client.joinRoom(ROOM, `join-token-${name}`, {
      produce: { video: this.camera.track, audio: this.mic.track },
      displayName: name,
    });
    this.session.on('suspected', (e) => this.suspected.push(e));
    this.session.on('reconnected', (e) => this.reconnected.push(e));
    this.session.on('switchCancelled', (e) => this.cancelled.push(e));
    this.session.on('warning', (e) => this.warnings.push(e.message));
    this.session.on('remoteTrack', (track) => {
      if (track.kind !== 'video') return;
      const counter = new VideoFrameCounter(track.track);
      stoppables.push(counter);
      this.remoteVideo.push({ track, counter, at: nowMs() });
    });
  }

  /** Frames decoded on the newest remote video track received at or after `since`. */
  framesSince(since: number): number {
    const latest = this.remoteVideo.filter((v) => v.at >= since).at(-1);
    return latest ? latest.counter.frames : 0;
  }
}

async function callOnA(options?: ConstructorParameters<typeof Participant>[1]): Promise<Participant[]> {
  const alice = new Participant('alice', options);
  const bob = new Participant('bob', options);
  for (const p of [alice, bob]) expect((await p.session.ready).serverId).toBe('switch-a');
  await waitFor(
    () => [alice, bob].every((p) => p.framesSince(0) >= FLOWING_FRAMES),
    'video both ways',
    30_000,
  );
  return [alice, bob];
}

describe('switchover on a frozen server (real peers)', () => {
  beforeEach(() => startWorld());
  afterEach(() => stopWorld());

  it('detects the freeze from stats and a missed ping, switches both peers, and video flows again', async () => {
    const peers = await callOnA();
    const joinsBefore = lb.joins.length;
    const frozenAt = nowMs();
    freeze(a);

    await waitFor(() => peers.every((p) => p.reconnected.length > 0), 'both peers to switch', 20_000);
    for (const p of peers) {
      expect(p.suspected).toHaveLength(1);
      expect(p.suspected[0]).toMatchObject({ serverId: 'switch-a' });
      expect(['media_stall', 'ping_missed']).toContain(p.suspected[0]!.signal);
      expect(p.suspected[0]!.evidence.join('; ')).toMatch(/no inbound media for \d+ ms/);
      expect(p.reconnected[0]).toMatchObject({
        serverId: 'switch-b',
        mode: 'switch',
        reason: p.suspected[0]!.signal,
      });
      expect(p.session.connectionState).toBe('connected');
      // The app's tracks were never stopped: the new server gets the very same ones.
      expect(p.camera.track.readyState).toBe('live');
      expect(p.mic.track.readyState).toBe('live');
    }
    // The switch's joins told the LB which server it suspects.
    expect(lb.joins.slice(joinsBefore).map((j) => j.body.exclude)).toEqual([
      { serverIds: ['switch-a'] },
      { serverIds: ['switch-a'] },
    ]);
    await waitFor(
      () => peers.every((p) => p.framesSince(frozenAt) >= FLOWING_FRAMES),
      'video both ways on the new server',
      20_000,
    );
    expect(b.server.counts().producers).toBe(4);
  });

  it('rides out a freeze that ends before the switch is ready: the new server never sees the peer', async () => {
    const peers = await callOnA();
    // Placement is slow today: the freeze ends while the switch still waits for its answer.
    lb.answerDelayMs = (call) => (call.body.exclude ? 1_500 : 0);
    const original = peers.map((p) => p.remoteVideo.at(-1)!);
    freeze(a);
    await waitFor(
      () => peers.every((p) => p.suspected.length > 0),
      'both peers to suspect the server',
      15_000,
    );
    thaw(a);
    await waitFor(
      () => peers.every((p) => p.cancelled.length > 0),
      'both switches to be dropped',
      15_000,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}: ${JSON.stringify(peers.map((p) => ({ s: p.suspected, r: p.reconnected, c: p.cancelled, w: p.warnings })))}`,
      );
    });
    for (const p of peers) {
      expect(p.reconnected).toEqual([]);
      expect(p.session.serverId).toBe('switch-a');
      expect(p.session.connectionState).toBe('connected');
    }
    expect(b.server.counts().peers).toBe(0);
    // Pictures go on on the very same remote tracks.
    const frames = original.map((v) => v.counter.frames);
    await waitFor(
      () => original.every((v, i) => v.counter.frames >= frames[i]! + FLOWING_FRAMES),
      'video to go on on the old tracks',
      15_000,
    );
  });

  it('does not switch when one remote peer goes quiet: that is the peer’s problem', async () => {
    const [alice, bob] = await callOnA();
    alice!.camera.stop();
    alice!.mic.stop();
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    expect(bob!.suspected).toEqual([]);
    expect(alice!.suspected).toEqual([]);
  });
});

describe('no false switch (real peers)', () => {
  afterEach(() => stopWorld());

  it('a muted call for 5 minutes of detector time does not switch', async () => {
    await startWorld();
    // The detector's clock runs 5x: ticks every 50 real ms are its 250 ms.
    const start = nowMs();
    const fast = () => start + (nowMs() - start) * 5;
    const peers = await callOnA({
      detectorClock: fast,
      // The SDK's thresholds, on the fast clock (its stats period scaled with it).
      detection: { ...DETECTION_DEFAULTS, statsIntervalMs: DETECTION_DEFAULTS.statsIntervalMs / 5 },
    });
    for (const p of peers) {
      await p.session.setMuted('video', true);
      await p.session.setMuted('audio', true);
    }
    const mutedAt = fast();
    // Five minutes of detector time, 60 s of real time; polled, since a timer may fire a fraction of a
    // millisecond before the clock it is compared with says its time is up.
    while (fast() - mutedAt < 300_000) await new Promise((resolve) => setTimeout(resolve, 250));
    for (const p of peers) {
      expect(p.suspected).toEqual([]);
      expect(p.reconnected).toEqual([]);
      expect(p.session.serverId).toBe('switch-a');
    }
  }, 180_000);

  it('a 1-minute call with 300 ms of jitter on signaling and media does not switch', async () => {
    await startWorld({ jitterMs: 300, mediaJitterMs: 300 });
    const peers = await callOnA();
    const since = nowMs();
    await new Promise((resolve) => setTimeout(resolve, 60_000));
    for (const p of peers) {
      expect(p.suspected).toEqual([]);
      expect(p.reconnected).toEqual([]);
    }
    // The jitter was real: pictures still flowed, on the original tracks.
    expect(peers.every((p) => p.framesSince(0) >= FLOWING_FRAMES)).toBe(true);
    expect(since).toBeGreaterThan(0);
  }, 180_000);
});
