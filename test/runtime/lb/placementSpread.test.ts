/**
 * Rooms placed between two heartbeats, through the real join path on a real dynalite: their servers
 * cannot report them yet, so the LB counts each at the load per room the fleet reports.
 */
import { DEFAULT_SERVER_LIVENESS_MS } from '../../../runtime/store';
import { join, mediaServer, startLb, T0, type LbHarness } from './lbHarness';

let h: LbHarness;

beforeEach(async () => {
  h = await startLb({ region: 'eu-west-1' });
});

afterEach(async () => {
  await h.close();
});

async function serverOf(room: string): Promise<string> {
  const res = await join(h, room);
  expect(res.statusCode).toBe(200);
  return (res.json() as { serverId: string }).serverId;
}

describe('rooms placed before their servers report them', () => {
  it('counts each at the load per room the live servers report', async () => {
    // 870 units over 22 rooms: 39.5 per room. The dead server's heavy rooms are not today's rooms.
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1', { load: 400, rooms: 10, capacity: 1_000 }));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { load: 470, rooms: 12, capacity: 1_000 }));
    await h.admin.servers.put(
      mediaServer('eu-dead', 'eu-west-1', {
        load: 900,
        rooms: 1,
        capacity: 1_000,
        heartbeatAt: T0 - DEFAULT_SERVER_LIVENESS_MS - 1,
      }),
    );
    await h.app.fleet.refresh();

    const placed = [];
    for (const room of ['r1', 'r2', 'r3', 'r4']) placed.push(await serverOf(room));
    // eu-a: 400, 439.5, 479 (> 470: eu-b's turn), then eu-b at 509.5 is above eu-a again.
    expect(placed).toEqual(['eu-a', 'eu-a', 'eu-b', 'eu-a']);
  });

  it('counts a small call per room while no server reports rooms', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1', { load: 400, capacity: 1_000 }));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { load: 470, capacity: 1_000 }));
    await h.app.fleet.refresh();

    const placed = [];
    for (let i = 0; i < 10; i++) placed.push(await serverOf(`r${i}`));
    // 400 + 8 × 9 = 472: the tenth room is the first one eu-b gets.
    expect(placed).toEqual([...Array<string>(9).fill('eu-a'), 'eu-b']);
  });

  it('spreads joins that are placed at the same moment', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1', { load: 400, rooms: 10, capacity: 1_000 }));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { load: 420, rooms: 10, capacity: 1_000 }));
    await h.app.fleet.refresh();

    // The second join decides while the first one's write is still on its way to the table.
    const placed = await Promise.all(['r1', 'r2'].map((room) => serverOf(room)));
    expect(placed.sort()).toEqual(['eu-a', 'eu-b']);
  });

  it('counts a room on its server until a heartbeat written after it', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1', { load: 400, rooms: 10, capacity: 1_000 }));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { load: 420, rooms: 10, capacity: 1_000 }));
    await h.app.fleet.refresh();
    expect(await serverOf('r1')).toBe('eu-a');

    // eu-a's next heartbeat shows the room lighter than assumed: it is the least loaded again.
    h.clock.advance(2_000);
    await h.admin.servers.put(
      mediaServer('eu-a', 'eu-west-1', { load: 408, rooms: 11, capacity: 1_000, heartbeatAt: h.clock.t }),
    );
    await h.app.fleet.refresh();
    expect(await serverOf('r2')).toBe('eu-a');
  });
});
