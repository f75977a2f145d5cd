import { Store } from '../../../runtime/store';
import { startDynalite, TEST_CREDENTIALS, type TestDynamo } from '../../support/dynalite';

let db: TestDynamo;
let store: Store;
let clockMs = 1_700_000_000_000;

beforeAll(async () => {
  db = await startDynalite();
  store = new Store({
    region: db.region,
    tableName: db.tableName,
    endpoint: db.endpoint,
    credentials: TEST_CREDENTIALS,
    now: () => clockMs,
  });
});

afterAll(async () => {
  store.close();
  await db.close();
});

describe('room legs', () => {
  it("reads a room's item and its legs in one view, the room item standing for its own region", async () => {
    await store.rooms.place({ roomId: 'r-legs', serverId: 'us-a', region: 'us-east-1' });
    expect(await store.legs.place({ roomId: 'r-legs', region: 'eu-west-1', serverId: 'eu-a' })).toMatchObject(
      {
        outcome: 'placed',
        leg: { region: 'eu-west-1', serverId: 'eu-a', version: 1, home: false },
      },
    );
    await store.legs.place({ roomId: 'r-legs', region: 'ap-southeast-1', serverId: 'ap-a' });
    // A stale leg item of the room item's own region is shadowed by the room item.
    await store.legs.place({ roomId: 'r-legs', region: 'us-east-1', serverId: 'us-stale' });
    const view = await store.legs.ofRoom('r-legs');
    expect(
      Object.fromEntries([...view.legs].map(([region, leg]) => [region, [leg.serverId, leg.home]])),
    ).toEqual({
      'us-east-1': ['us-a', true],
      'eu-west-1': ['eu-a', false],
      'ap-southeast-1': ['ap-a', false],
    });
    // Leg items are not rooms: the room's assignment and the region's room list are unchanged.
    expect(await store.rooms.get('r-legs')).toMatchObject({ serverId: 'us-a', region: 'us-east-1' });
    expect((await store.rooms.list('eu-west-1')).map((r) => r.id)).not.toContain('r-legs');
  });

  it('creates a leg once, takes it over only from the version read, and answers the winner when lost', async () => {
    const first = await store.legs.place({ roomId: 'r-leg-race', region: 'eu-west-1', serverId: 'eu-a' });
    const second = await store.legs.place({ roomId: 'r-leg-race', region: 'eu-west-1', serverId: 'eu-b' });
    expect(first.outcome).toBe('placed');
    expect(second).toEqual({ outcome: 'lost', current: expect.objectContaining({ serverId: 'eu-a' }) });
    clockMs += 1_000;
    const takeover = await store.legs.place({
      roomId: 'r-leg-race',
      region: 'eu-west-1',
      serverId: 'eu-b',
      expectedVersion: 1,
    });
    expect(takeover).toMatchObject({ outcome: 'placed', leg: { serverId: 'eu-b', version: 2 } });
    const stale = await store.legs.place({
      roomId: 'r-leg-race',
      region: 'eu-west-1',
      serverId: 'eu-c',
      expectedVersion: 1,
    });
    expect(stale).toMatchObject({ outcome: 'lost', current: { serverId: 'eu-b', version: 2 } });
  });

  it('releases and refreshes a leg only for the server that holds it', async () => {
    await store.legs.place({ roomId: 'r-leg-rel', region: 'eu-west-1', serverId: 'eu-a' });
    expect(await store.legs.refresh('r-leg-rel', 'eu-west-1', 'eu-b')).toBe(false);
    expect(await store.legs.refresh('r-leg-rel', 'eu-west-1', 'eu-a')).toBe(true);
    expect(await store.legs.release('r-leg-rel', 'eu-west-1', 'eu-b')).toBe(false);
    expect(await store.legs.get('r-leg-rel', 'eu-west-1')).not.toBeNull();
    expect(await store.legs.release('r-leg-rel', 'eu-west-1', 'eu-a')).toBe(true);
    expect(await store.legs.get('r-leg-rel', 'eu-west-1')).toBeNull();
    expect(await store.legs.refresh('r-leg-rel', 'eu-west-1', 'eu-a')).toBe(false);
    expect((await store.legs.ofRoom('r-leg-rel')).legs.size).toBe(0);
  });
});
