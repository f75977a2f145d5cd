/**
 * One control channel between two legs of a room, on real mediasoup workers (127.0.164.1 and
 * 127.0.165.1, as two regions' media servers) and a real WebSocket, without the LB in between (the
 * relay passes frames untouched; test/runtime/lb/cascadeRoute.test.ts covers it). What it shows: a
 * connected pipe counts in both rooms' load, a leg at capacity refuses the pipe and changes nothing, and
 * peers are told which region each producer's peer is in and whether a remote peer left or was lost
 * with its leg.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { CascadeChannel, type CascadeCloseReason } from '../../../runtime/media/CascadeChannel';
import { loadMediaEngine, type EngineWorker } from '../../../runtime/media/engine';
import { Peer } from '../../../runtime/media/Peer';
import { Room } from '../../../runtime/media/Room';
import type { NotificationFrame } from '../../../runtime/protocol/signaling';
import { waitFor } from './rtpFixtures';

jest.setTimeout(30_000);

const logger = pino({ level: 'silent' });
let workerA: EngineWorker;
let workerB: EngineWorker;
let wss: WebSocketServer;
let cleanup: Array<() => void> = [];

beforeAll(async () => {
  const engine = loadMediaEngine();
  workerA = await engine.createWorker({
    index: 0,
    logLevel: 'warn',
    listenIp: '127.0.164.1',
    announcedIp: '127.0.164.1',
    rtcMinPort: 27_600,
    rtcMaxPort: 27_799,
  });
  workerB = await engine.createWorker({
    index: 1,
    logLevel: 'warn',
    listenIp: '127.0.165.1',
    announcedIp: '127.0.165.1',
    rtcMinPort: 27_800,
    rtcMaxPort: 27_999,
  });
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
});

afterEach(() => {
  for (const step of cleanup.reverse()) step();
  cleanup = [];
});

afterAll(async () => {
  workerA?.close();
  workerB?.close();
  await new Promise((resolve) => wss.close(resolve));
});

async function room(worker: EngineWorker, id: string, region: string): Promise<Room> {
  const created = await Room.create({
    id,
    serverId: `server-${worker.index}`,
    region,
    worker,
    limits: { maxPeers: 10 },
    logger,
  });
  cleanup.push(() => created.close('empty'));
  return created;
}

/** Leg "ap" (initiator, on worker A) asks leg "eu" (responder, on worker B) over one socket. */
async function channelPair(opts: { responderHasCapacity: boolean }) {
  const [ap, eu] = [await room(workerA, 'r', 'ap-southeast-1'), await room(workerB, 'r', 'eu-west-1')];
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const socket = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  const [serverSocket] = await accepted;
  const common = { portRange: { min: 27_600, max: 27_999 }, logger };
  const responder = new CascadeChannel({
    ...common,
    room: eu,
    role: 'responder',
    remoteRegion: 'ap-southeast-1',
    remoteServerId: 'server-0',
    socket: serverSocket,
    hasCapacity: () => opts.responderHasCapacity,
  });
  const initiator = new CascadeChannel({
    ...common,
    room: ap,
    role: 'initiator',
    remoteRegion: 'eu-west-1',
    remoteServerId: 'server-1',
    socket,
    hasCapacity: () => true,
  });
  cleanup.push(
    () => initiator.close(),
    () => responder.close(),
  );
  const closed = (c: CascadeChannel) =>
    new Promise<CascadeCloseReason>((resolve) => c.once('close', resolve));
  return {
    ap,
    eu,
    initiator,
    responder,
    initiatorClosed: closed(initiator),
    responderClosed: closed(responder),
  };
}

it("connects a pipe both ways, and the pipe counts in both legs' load", async () => {
  const { ap, eu, initiator, responder } = await channelPair({ responderHasCapacity: true });
  expect([ap.loadUnits, eu.loadUnits]).toEqual([0, 0]);
  await waitFor(() => initiator.ready && responder.ready, 'both sides connected', 10_000);
  expect([ap.links.get('eu-west-1')?.connected, eu.links.get('ap-southeast-1')?.connected]).toEqual([
    true,
    true,
  ]);
  // One pipe transport each (keepalive streams are not counted).
  expect([ap.loadUnits, eu.loadUnits]).toEqual([1, 1]);
  initiator.close();
  await waitFor(() => responder.closed, 'the other side to close with it', 5_000);
  expect([ap.loadUnits, eu.loadUnits, ap.links.size, eu.links.size]).toEqual([0, 0, 0, 0]);
});

it('a leg at capacity refuses the pipe: both sides close, no pipe is left on either', async () => {
  const { ap, eu, initiatorClosed, responderClosed } = await channelPair({ responderHasCapacity: false });
  expect(await responderClosed).toBe('full');
  expect(await initiatorClosed).toBe('remote_closed');
  expect([ap.links.size, eu.links.size, ap.loadUnits, eu.loadUnits]).toEqual([0, 0, 0, 0]);
});

/** A real peer joined to `room`, keeping the notifications it is sent. */
function joinPeer(room: Room, identity: string): { peer: Peer; notes: NotificationFrame[] } {
  const notes: NotificationFrame[] = [];
  const peer = new Peer({
    id: `${identity}-peer`,
    identity,
    router: room.router,
    worker: room.worker,
    limits: { maxTransports: 4, maxProducers: 4, maxConsumers: 16 },
    sink: (frame) => notes.push(frame as NotificationFrame),
    logger,
  });
  room.addPeer(peer);
  return { peer, notes };
}

/** A video producer of `peer` on a send transport (never connected: no media is needed here). */
async function produceVideo(peer: Peer, ssrc: number): Promise<string> {
  const transport = await peer.createWebRtcTransport('send');
  const producer = await peer.produce(
    peer.transports.get(transport.id)!,
    'video',
    { codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90_000 }], encodings: [{ ssrc }] },
    {},
  );
  return producer.id;
}

function notesOf(notes: NotificationFrame[], name: string): unknown[] {
  return notes.filter((n) => n.notification === name).map((n) => n.data);
}

it("tells peers each producer's region: the leg's own for a local one, the piping leg's for a piped one; a peer that leaves is `left`", async () => {
  const { ap, eu, initiator, responder } = await channelPair({ responderHasCapacity: true });
  await waitFor(() => initiator.ready && responder.ready, 'both sides connected', 10_000);
  const carol = joinPeer(ap, 'carol');
  const alice = joinPeer(ap, 'alice');
  const bob = joinPeer(eu, 'bob');
  const aliceVideo = await produceVideo(alice.peer, 1_111);
  const bobVideo = await produceVideo(bob.peer, 2_222);
  await waitFor(
    () => ap.remoteProducers.has(bobVideo) && eu.remoteProducers.has(aliceVideo),
    'each producer piped to the other leg',
  );

  // Carol shares alice's leg: alice is in ap-southeast-1, this leg's region.
  const aliceInfo = { producerId: aliceVideo, peerId: alice.peer.id, identity: 'alice', kind: 'video' };
  expect(notesOf(carol.notes, 'peerJoined')).toContainEqual({
    peerId: alice.peer.id,
    identity: 'alice',
    region: 'ap-southeast-1',
  });
  expect(notesOf(carol.notes, 'newProducer')).toContainEqual(
    expect.objectContaining({ ...aliceInfo, region: 'ap-southeast-1' }),
  );
  // Bob's producer is piped in from eu-west-1: that is his region at ap's peers, not ap's own.
  const bobInfo = { producerId: bobVideo, peerId: bob.peer.id, identity: 'bob', kind: 'video' };
  for (const watcher of [carol, alice]) {
    expect(notesOf(watcher.notes, 'peerJoined')).toContainEqual({
      peerId: bob.peer.id,
      identity: 'bob',
      region: 'eu-west-1',
    });
    expect(notesOf(watcher.notes, 'newProducer')).toContainEqual(
      expect.objectContaining({ ...bobInfo, region: 'eu-west-1' }),
    );
  }
  // And the other way: alice's producer reaches bob with her region.
  expect(notesOf(bob.notes, 'newProducer')).toContainEqual(
    expect.objectContaining({ ...aliceInfo, region: 'ap-southeast-1' }),
  );
  // A peer that joins later lists the same.
  expect(ap.listProducers()).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ ...aliceInfo, region: 'ap-southeast-1' }),
      expect.objectContaining({ ...bobInfo, region: 'eu-west-1' }),
    ]),
  );
  expect(eu.listProducers()).toEqual([
    expect.objectContaining({ ...bobInfo, region: 'eu-west-1' }),
    expect.objectContaining({ ...aliceInfo, region: 'ap-southeast-1' }),
  ]);

  // Bob, eu's only peer, leaves: his leg's room closes with him and its channel with it, yet ap's
  // peers hear that he left, not that his leg was lost.
  bob.peer.close('left');
  await waitFor(() => notesOf(alice.notes, 'peerLeft').length > 0, "alice to see bob's peer go");
  expect(eu.closed).toBe(true);
  for (const watcher of [carol, alice]) {
    expect(notesOf(watcher.notes, 'producerClosed')).toEqual([
      { producerId: bobVideo, peerId: bob.peer.id, reason: 'closed' },
    ]);
    expect(notesOf(watcher.notes, 'peerLeft')).toEqual([{ peerId: bob.peer.id, reason: 'left' }]);
  }
});

it("a leg cut off ends its peers' producers as `leg_lost` at the other leg, with its region known to the end", async () => {
  const { ap, eu, initiator, responder, initiatorClosed } = await channelPair({ responderHasCapacity: true });
  await waitFor(() => initiator.ready && responder.ready, 'both sides connected', 10_000);
  const carol = joinPeer(ap, 'carol');
  const bob = joinPeer(eu, 'bob');
  const bobVideo = await produceVideo(bob.peer, 3_333);
  await waitFor(() => ap.remoteProducers.has(bobVideo), "bob's producer piped to ap");
  expect(ap.remoteProducers.get(bobVideo)?.region).toBe('eu-west-1');

  // eu judges ap silent and drops the channel without a word: at ap the socket just closes.
  responder.close('remote_silent');
  expect(await initiatorClosed).toBe('socket_closed');
  expect(notesOf(carol.notes, 'producerClosed')).toEqual([
    { producerId: bobVideo, peerId: bob.peer.id, reason: 'leg_lost' },
  ]);
  expect(notesOf(carol.notes, 'peerLeft')).toEqual([{ peerId: bob.peer.id, reason: 'leg_lost' }]);
  expect(ap.listProducers()).toEqual([]);
  // Bob himself is untouched on his own leg.
  expect(eu.peers.has(bob.peer.id)).toBe(true);
});
