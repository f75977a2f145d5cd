/**
 * Process faults under a live relay, on real processes (an LB process in front of two media server
 * processes with one mediasoup worker each, as the local stack runs them):
 *
 *   - the only worker of a media server dies: its rooms close, their peers are told to rejoin (through
 *     the relay, which passes the 4000 close on), the server re-creates the worker and serves a new join;
 *   - a media server process dies mid-relay: the relay closes with 1014 (the code the SDK reads as
 *     "rejoin elsewhere"), and the LB goes on serving joins and relaying to the other server.
 *
 * test/runtime/media/signaling.test.ts covers a worker dying on a two-worker server (other rooms go on)
 * and test/runtime/lb/relay.test.ts the relay's close codes against an echo server; this file puts the
 * real pieces together.
 */
import { SIGNALING_CLOSE } from '../../runtime/protocol/signaling';
import type { MediaServerProcess } from '../runtime/media/mediaServerProcess';
import { startEdge, type Edge } from './edgeHarness';
import { RawSignaling } from './mediaHarness';

jest.setTimeout(60_000);

let edge: Edge;
let requestId = 1;

beforeAll(async () => {
  edge = await startEdge({
    media: [
      { serverId: 'faults-a', rtcMinPort: 22_280, rtcMaxPort: 22_299 },
      { serverId: 'faults-b', rtcMinPort: 22_300, rtcMaxPort: 22_319 },
    ],
  });
  await edge.waitReady();
}, 60_000);

afterAll(async () => {
  await edge?.stop();
});

afterEach(() => {
  expect(edge.lb.running).toBe(true);
  expect(edge.lb.errorLines()).toEqual([]);
});

function server(id: string): MediaServerProcess {
  return edge.media.find((m) => m.serverId === id)!;
}

function other(id: string): string {
  return edge.media.find((m) => m.serverId !== id)!.serverId;
}

/** Joins through the LB (optionally excluding servers), opens the relay and joins the room. */
async function joinViaLb(
  room: string,
  sub: string,
  excludeServers: string[] = [],
): Promise<{ conn: RawSignaling; serverId: string }> {
  const { status, body } = await edge.join(room, {
    sub,
    body: excludeServers.length ? { exclude: { serverIds: excludeServers } } : {},
  });
  expect(status).toBe(200);
  const conn = await RawSignaling.open(body.signalingUrl, body.mediaToken);
  await conn.request(requestId++, 'join', { token: body.mediaToken });
  return { conn, serverId: body.serverId };
}

async function served(conn: RawSignaling): Promise<void> {
  expect(conn.isOpen).toBe(true);
  expect(await conn.request(requestId++, 'ping', {})).toHaveProperty('serverTime');
}

test("a media server's only worker dies: its peers are told to rejoin through the relay, and the worker comes back", async () => {
  const victim = await joinViaLb('worker-room', 'alice');
  const proc = server(victim.serverId);
  const bystander = await joinViaLb('bystander-room', 'bob', [victim.serverId]);
  const worker = proc.logs.filter((l) => l.msg === 'mediasoup worker started').at(-1)!;
  const restartsBefore = proc.logs.filter((l) => l.msg === 'mediasoup worker re-created').length;

  process.kill(worker.pid as number, 'SIGKILL');

  expect(await victim.conn.closed).toMatchObject({ code: SIGNALING_CLOSE.rejoin });
  expect(victim.conn.notifications).toContainEqual({
    notification: 'rejoin',
    data: { reason: 'worker_died', serverId: victim.serverId },
  });
  await proc.waitForLog(
    (l) =>
      l.msg === 'mediasoup worker re-created' &&
      proc.logs.filter((x) => x.msg === l.msg).length > restartsBefore,
  );
  expect(proc.child.exitCode).toBeNull();
  await served(bystander.conn);

  // The same server takes a new join on its new worker (the client excludes the other server, so the
  // LB must answer this one).
  const again = await joinViaLb('worker-room', 'alice', [other(victim.serverId)]);
  expect(again.serverId).toBe(victim.serverId);
  expect(
    await again.conn.request(requestId++, 'createWebRtcTransport', { direction: 'send' }),
  ).toHaveProperty('id');
  expect(await proc.stats()).toMatchObject({ workers: 1, rooms: 1, peers: 1 });
  again.conn.close();
  bystander.conn.close();
});

test('a media server dies mid-relay: the relay closes with 1014 and the LB serves and relays on the other server', async () => {
  const victim = await joinViaLb('crash-room', 'alice');
  const survivorId = other(victim.serverId);
  const bystander = await joinViaLb('calm-room', 'bob', [victim.serverId]);
  expect(bystander.serverId).toBe(survivorId);

  await server(victim.serverId).kill();

  expect(await victim.conn.closed).toEqual({ code: 1014, reason: 'media server connection lost' });
  await served(bystander.conn);

  // Until the dead server's heartbeat ages out the LB may still answer it; that relay is refused with
  // 1014 as well, and the client rejoins excluding the server, as the SDK does.
  const { body } = await edge.join('crash-room', { sub: 'carol' });
  if (body.serverId === victim.serverId) {
    const stale = await RawSignaling.open(body.signalingUrl, body.mediaToken);
    expect(await stale.closed).toEqual({ code: 1014, reason: 'media server unreachable' });
  } else {
    expect(body.serverId).toBe(survivorId);
  }
  const rejoined = await joinViaLb('crash-room', 'alice', [victim.serverId]);
  expect(rejoined.serverId).toBe(survivorId);
  expect(
    await rejoined.conn.request(requestId++, 'createWebRtcTransport', { direction: 'recv' }),
  ).toHaveProperty('id');
  // The room was taken over from the dead server: its item now names the survivor.
  expect(await edge.store.rooms.get('crash-room')).toMatchObject({ serverId: survivorId, version: 2 });
  await served(bystander.conn);
  rejoined.conn.close();
  bystander.conn.close();
});
