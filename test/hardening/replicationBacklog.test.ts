/**
 * Found by replicaLoss.test.ts: when a partition healed, the replicator handed the whole backlog to each
 * replica at once, and since a replica runs applies and its own clients' writes one at a time, local
 * writes right after the heal waited behind hundreds of applies and timed out (2 s) in regions that had
 * never been partitioned. The backlog now drains a few applies at a time, all of it, in order of arrival.
 */
import type { ReplicatedWrite } from '../../runtime/local/RegionReplica';
import { Replicator, type ReplicationTarget } from '../../runtime/local/Replicator';

const BACKLOG = 200;

function write(origin: string, n: number): ReplicatedWrite {
  const key = { pk: { S: `item-${n}` }, sk: { S: 'meta' } };
  return { origin, writtenAt: Date.now(), key, item: key };
}

test('a healed partition drains its backlog a few applies at a time, and all of it', async () => {
  let inFlight = 0;
  let mostInFlight = 0;
  const applied: string[] = [];
  const target = (name: string): ReplicationTarget => ({
    name,
    apply: async (w) => {
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      if (name === 'b') applied.push(w.key.pk!.S!);
      return 'applied';
    },
  });
  const replicator = new Replicator({ targets: [target('a'), target('b')], lagMs: 0 });
  replicator.pause('a');
  for (let n = 0; n < BACKLOG; n++) replicator.publish(write('a', n));
  replicator.resume('a');

  const deadline = Date.now() + 10_000;
  while (applied.length < BACKLOG && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(applied).toEqual(Array.from({ length: BACKLOG }, (_, n) => `item-${n}`));
  expect(mostInFlight).toBeGreaterThan(0);
  expect(mostInFlight).toBeLessThanOrEqual(4);
  expect(replicator.stats().b).toMatchObject({ inboundQueue: 0, applied: BACKLOG, dropped: 0 });
  await replicator.close();
});
