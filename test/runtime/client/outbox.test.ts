import { SignalingLostError } from '../../../runtime/client/errors';
import { MAX_QUEUED_OPERATIONS, Outbox } from '../../../runtime/client/Outbox';

const lost = (err: unknown) => err instanceof SignalingLostError;

describe('Outbox', () => {
  it('replays operations in order and resolves their callers', async () => {
    const outbox = new Outbox();
    const ran: string[] = [];
    const first = outbox.enqueue('muted:audio', async () => void ran.push('audio'));
    const second = outbox.enqueue('muted:video', async () => void ran.push('video'));
    await outbox.flush(lost);
    await Promise.all([first, second]);
    expect(ran).toEqual(['audio', 'video']);
    expect(outbox.size).toBe(0);
  });

  it('keeps only the latest operation per key, and resolves every caller of that key', async () => {
    const outbox = new Outbox();
    const ran: boolean[] = [];
    const calls = [true, false, true].map((muted) =>
      outbox.enqueue('muted:video', async () => void ran.push(muted)),
    );
    await outbox.flush(lost);
    await Promise.all(calls);
    expect(ran).toEqual([true]);
  });

  it('keeps the operation and the rest queued when the connection drops again mid-flush', async () => {
    const outbox = new Outbox();
    let connected = false;
    const ran: string[] = [];
    const a = outbox.enqueue('a', async () => {
      if (!connected) throw new SignalingLostError('signaling_closed', 'gone');
      ran.push('a');
    });
    const b = outbox.enqueue('b', async () => void ran.push('b'));
    await outbox.flush(lost);
    expect(ran).toEqual([]);
    expect(outbox.size).toBe(2);
    connected = true;
    await outbox.flush(lost);
    await Promise.all([a, b]);
    expect(ran).toEqual(['a', 'b']);
  });

  it('rejects the callers of an operation that fails for good, and goes on', async () => {
    const outbox = new Outbox();
    const bad = outbox.enqueue('bad', async () => {
      throw new Error('producer "x" not found');
    });
    const good = outbox.enqueue('good', async () => undefined);
    await outbox.flush(lost);
    await expect(bad).rejects.toThrow('not found');
    await expect(good).resolves.toBeUndefined();
  });

  it('is bounded and rejects everything on close', async () => {
    const outbox = new Outbox();
    const queued = Array.from({ length: MAX_QUEUED_OPERATIONS }, (_, i) =>
      outbox.enqueue(`k${i}`, async () => undefined),
    );
    await expect(outbox.enqueue('one-too-many', async () => undefined)).rejects.toThrow(
      String(MAX_QUEUED_OPERATIONS),
    );
    outbox.rejectAll(new Error('closed'));
    await expect(Promise.all(queued)).rejects.toThrow('closed');
    expect(outbox.size).toBe(0);
  });
});
