/**
 * One control channel between two legs of a room, on real mediasoup workers (127.0.164.1 and
 * 127.0.165.1, as two regions' media servers) and a real WebSocket, without the LB in between (the
 * relay passes frames untouched; test/runtime/lb/cascadeRoute.test.ts covers it). What it shows: a
 * connected pipe counts in both rooms' load, and a leg at capacity refuses the pipe and changes nothing.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { CascadeChannel, type CascadeCloseReason } from '../../../runtime/media/CascadeChannel';
import { loadMediaEngine, type EngineWorker } from '../../../runtime/media/engine';
import { Room } from '../../../runtime/media/Room';
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

async function room(worker: EngineWorker, id: string): Promise<Room> {
  const created = await Room.create({
    id,
    serverId: `server-${worker.index}`,
    worker,
    limits: { maxPeers: 10 },
    logger,
  });
  cleanup.push(() => created.close('empty'));
  return created;
}

/** Leg "ap" (initiator, on worker A) asks leg "eu" (responder, on worker B) over one socket. */
async function channelPair(opts: { responderHasCapacity: boolean }) {
  const [ap, eu] = [await room(workerA, 'r'), await room(workerB, 'r')];
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
