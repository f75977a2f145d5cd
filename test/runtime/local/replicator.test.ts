/**
 * Delivery rules of the replicator that the dynalite-backed tests cannot provoke: failing targets, the
 * version order behind last-writer-wins, and a lag changed while writes wait.
 */
import { isNewer, type ReplicatedWrite } from '../../../runtime/local/RegionReplica';
import { Replicator, type ReplicationTarget } from '../../../runtime/local/Replicator';

const write = (origin: string, writtenAt = Date.now()): ReplicatedWrite => ({
  origin,
  writtenAt,
  key: { pk: { S: 'k' }, sk: { S: 'meta' } },
  item: { pk: { S: 'k' }, sk: { S: 'meta' } },
});

function recorder(name: string, failures = 0): ReplicationTarget & { received: ReplicatedWrite[] } {
  let left = failures;
  const received: ReplicatedWrite[] = [];
  return {
    name,
    received,
    apply: async (w) => {
      if (left-- > 0) throw new Error(`${name} is closing`);
      received.push(w);
      return 'applied';
    },
  };
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('the later write wins; equal times go to the greater region name on every replica', () => {
  expect(isNewer({ writtenAt: 2, origin: 'a' }, { writtenAt: 1, origin: 'z' })).toBe(true);
  expect(isNewer({ writtenAt: 1, origin: 'z' }, { writtenAt: 2, origin: 'a' })).toBe(false);
  expect(isNewer({ writtenAt: 1, origin: 'us-east-1' }, { writtenAt: 1, origin: 'eu-west-1' })).toBe(true);
  expect(isNewer({ writtenAt: 1, origin: 'eu-west-1' }, { writtenAt: 1, origin: 'us-east-1' })).toBe(false);
  expect(isNewer({ writtenAt: 1, origin: 'a' }, { writtenAt: 1, origin: 'a' })).toBe(false);
});

test('a failing apply is retried, and counted as dropped only after repeated failures', async () => {
  const origin = recorder('a');
  const flaky = recorder('b', 2);
  const broken = recorder('c', Infinity);
  const errors: string[] = [];
  const replicator = new Replicator({
    targets: [origin, flaky, broken],
    lagMs: 0,
    onError: (_e, target) => errors.push(target),
  });
  replicator.publish(write('a'));
  await until(() => flaky.received.length === 1 && replicator.stats().c!.dropped === 1);
  expect(origin.received).toEqual([]);
  expect(replicator.stats()).toMatchObject({
    b: { applied: 1, dropped: 0, inboundQueue: 0 },
    c: { applied: 0, dropped: 1, inboundQueue: 0 },
    a: { outboundQueue: 0 },
  });
  expect(errors.filter((t) => t === 'b')).toHaveLength(2);
  expect(errors.filter((t) => t === 'c')).toHaveLength(5);
  await replicator.close();
});

test('a lag raised while writes wait holds them longer; lowering it releases them', async () => {
  const target = recorder('b');
  const replicator = new Replicator({ targets: [recorder('a'), target], lagMs: 200 });
  replicator.publish(write('a'));
  replicator.setLag(60_000);
  await new Promise((r) => setTimeout(r, 400));
  expect(target.received).toHaveLength(0);
  expect(replicator.stats().b!.inboundQueue).toBe(1);
  replicator.setLag(0);
  await until(() => target.received.length === 1);
  await replicator.close();
});

test('a paused target and a paused origin both hold writes until resumed', async () => {
  const a = recorder('a');
  const b = recorder('b');
  const replicator = new Replicator({ targets: [a, b], lagMs: 0 });
  replicator.pause('b');
  replicator.publish(write('a'));
  replicator.publish(write('b'));
  await new Promise((r) => setTimeout(r, 100));
  expect([a.received.length, b.received.length]).toEqual([0, 0]);
  expect(replicator.stats().b).toMatchObject({ paused: true, inboundQueue: 1, outboundQueue: 1 });
  replicator.resume('b');
  await until(() => a.received.length === 1 && b.received.length === 1);
  await replicator.close();
});
