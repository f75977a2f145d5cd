/**
 * The machine-wide suite lock (test/support/suiteLock.ts) between real processes, in a directory of
 * this test's own (MRWEBRTC_SUITE_LOCK_DIR), so the lock that schedules this very run is not touched.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

jest.setTimeout(60_000);

const ROOT = path.resolve(__dirname, '..', '..');
const HOLDER = path.join(__dirname, 'fixtures', 'suiteLockHolder.ts');
let dir: string;
let log: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'suite-lock-'));
  log = path.join(dir, 'log');
  fs.writeFileSync(log, '');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Starts a holder; resolves when it has exited. */
function hold(role: 'reader' | 'writer', holdMs: number, name: string): Promise<number | null> {
  const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), [HOLDER, role, String(holdMs), name, log], {
    cwd: ROOT,
    env: { ...process.env, MRWEBRTC_SUITE_LOCK_DIR: dir },
    stdio: 'inherit',
  });
  return new Promise((resolve) => child.once('exit', resolve));
}

/** Each holder's [start, end] from the log. */
function spans(): Record<string, { start: number; end: number }> {
  const out: Record<string, { start: number; end: number }> = {};
  for (const line of fs.readFileSync(log, 'utf8').trim().split('\n')) {
    const [name, what, at] = line.split(' ') as [string, 'start' | 'end', string];
    out[name] = { ...out[name]!, [what]: Number(at) };
  }
  return out;
}

const overlap = (a: { start: number; end: number }, b: { start: number; end: number }) =>
  a.start < b.end && b.start < a.end;

/** Polls until `done()`, every 50 ms. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 50));
}

const started = (name: string) => fs.readFileSync(log, 'utf8').includes(`${name} start`);

it('lets readers share, a writer wait for them, and readers that come after a writer wait for it', async () => {
  const exits = [hold('reader', 2_500, 'r1'), hold('reader', 2_500, 'r2')];
  await until(() => started('r1') && started('r2'));
  exits.push(hold('writer', 1_000, 'w'));
  // The writer holds the lock directory while it waits for the readers; a reader that comes now waits.
  await until(() => fs.existsSync(path.join(dir, 'mrwebrtc-exclusive-suite.lock', 'pid')));
  exits.push(hold('reader', 500, 'r3'));
  expect(await Promise.all(exits)).toEqual([0, 0, 0, 0]);
  const s = spans();
  expect(overlap(s.r1!, s.r2!)).toBe(true);
  for (const reader of ['r1', 'r2', 'r3']) {
    expect({ reader, overlap: overlap(s.w!, s[reader]!) }).toEqual({ reader, overlap: false });
  }
  expect(s.w!.start).toBeGreaterThanOrEqual(Math.max(s.r1!.end, s.r2!.end));
  // r3 came while the writer waited: it waited for the writer, not only for the readers before it.
  expect(s.r3!.start).toBeGreaterThanOrEqual(s.w!.end);
});

it("takes over a dead writer's lock and sweeps a dead reader's file", async () => {
  const dead = spawnSync('true').pid!;
  fs.mkdirSync(path.join(dir, 'mrwebrtc-exclusive-suite.lock'));
  fs.writeFileSync(path.join(dir, 'mrwebrtc-exclusive-suite.lock', 'pid'), String(dead));
  fs.mkdirSync(path.join(dir, 'mrwebrtc-shared-suites'));
  fs.writeFileSync(path.join(dir, 'mrwebrtc-shared-suites', String(dead)), '');
  expect(await Promise.all([hold('reader', 100, 'r'), hold('writer', 100, 'w')])).toEqual([0, 0]);
  const s = spans();
  expect(overlap(s.r!, s.w!)).toBe(false);
  expect(fs.readdirSync(path.join(dir, 'mrwebrtc-shared-suites'))).toEqual([]);
  expect(fs.existsSync(path.join(dir, 'mrwebrtc-exclusive-suite.lock'))).toBe(false);
});
