/**
 * The local stack's process supervisor with real child processes: crash → restart with backoff; a
 * chaos kill or freeze holds the child down (no restart) until it is released.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProcessSupervisor, type ChildStatus } from '../../../runtime/local/ProcessSupervisor';

jest.setTimeout(30_000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supervisor-'));
/** Exits with code 3 after CRASH_AFTER_MS when set; otherwise writes a heartbeat file every 50 ms. */
const entry = path.join(dir, 'child.ts');
fs.writeFileSync(
  entry,
  `import * as fs from 'node:fs';
const after = Number(process.env.CRASH_AFTER_MS ?? 0);
if (after > 0) setTimeout(() => process.exit(3), after);
setInterval(() => fs.writeFileSync(process.env.BEAT_FILE!, String(Date.now())), 50);
process.on('SIGTERM', () => process.exit(0));
`,
);

let supervisor: ProcessSupervisor;

afterEach(async () => {
  await supervisor.stopAll();
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const beatAge = (file: string) =>
  fs.existsSync(file) ? Date.now() - Number(fs.readFileSync(file, 'utf8') || 0) : Infinity;
const statusOf = (name: string): ChildStatus => supervisor.status().find((s) => s.name === name)!;

it('restarts a crashed child with growing delays and reports each exit', async () => {
  supervisor = new ProcessSupervisor(path.join(dir, 'logs-crash'));
  const delays: number[] = [];
  supervisor.on('restart', (_s, delayMs) => delays.push(delayMs));
  supervisor.add({
    name: 'crashy',
    region: 'r',
    role: 'media',
    entry,
    env: { CRASH_AFTER_MS: '100', BEAT_FILE: path.join(dir, 'crashy') },
  });

  await until('three restarts', () => delays.length >= 3);
  expect(delays.slice(0, 3)).toEqual([500, 1000, 2000]);
  expect(statusOf('crashy').lastExit).toMatchObject({ code: 3 });
  expect(statusOf('crashy').restarts).toBeGreaterThanOrEqual(3);
});

it('holds a killed child down until it is released, then runs it again', async () => {
  supervisor = new ProcessSupervisor(path.join(dir, 'logs-kill'));
  const beat = path.join(dir, 'victim');
  const exits: boolean[] = [];
  supervisor.on('exit', (_s, expected) => exits.push(expected));
  supervisor.add({ name: 'victim', region: 'r', role: 'lb', entry, env: { BEAT_FILE: beat } });
  await until('first heartbeat', () => beatAge(beat) < 200);

  supervisor.kill('victim');
  await until('the kill', () => exits.length === 1);
  expect(exits).toEqual([true]);
  expect(statusOf('victim')).toMatchObject({ state: 'held', pid: null, lastExit: { signal: 'SIGKILL' } });
  await new Promise((r) => setTimeout(r, 1_200));
  expect(statusOf('victim').state).toBe('held');
  expect(beatAge(beat)).toBeGreaterThan(1_000);

  supervisor.release('victim');
  await until('a heartbeat after the release', () => beatAge(beat) < 200);
  expect(statusOf('victim').state).toBe('running');
  expect(statusOf('victim').restarts).toBe(0);
});

it('freezes a child without closing it, and resumes the same process', async () => {
  supervisor = new ProcessSupervisor(path.join(dir, 'logs-freeze'));
  const beat = path.join(dir, 'frozen');
  supervisor.add({ name: 'frozen', region: 'r', role: 'media', entry, env: { BEAT_FILE: beat } });
  await until('first heartbeat', () => beatAge(beat) < 200);
  const pid = statusOf('frozen').pid;

  supervisor.freeze('frozen');
  await until('heartbeats to stop', () => beatAge(beat) > 500);
  expect(statusOf('frozen')).toMatchObject({ frozen: true, pid });

  supervisor.release('frozen');
  await until('heartbeats to resume', () => beatAge(beat) < 200);
  expect(statusOf('frozen')).toMatchObject({ frozen: false, pid, state: 'running' });
});

it('freezes a child’s descendants with it (a media server’s workers), and resumes them together', async () => {
  supervisor = new ProcessSupervisor(path.join(dir, 'logs-freeze-tree'));
  const beat = path.join(dir, 'grandchild');
  const parent = path.join(dir, 'parent.ts');
  // The child does nothing itself; its own child (like a mediasoup worker) writes the heartbeats.
  fs.writeFileSync(
    parent,
    `import { spawn } from 'node:child_process';
const worker = spawn(process.execPath, ['-e', "setInterval(() => require('fs').writeFileSync(process.env.BEAT_FILE, String(Date.now())), 50)"], { stdio: 'ignore' });
process.on('SIGTERM', () => { worker.kill('SIGKILL'); process.exit(0); });
setInterval(() => undefined, 1000);
`,
  );
  supervisor.add({ name: 'tree', region: 'r', role: 'media', entry: parent, env: { BEAT_FILE: beat } });
  await until('the grandchild to beat', () => beatAge(beat) < 200);

  supervisor.freeze('tree');
  await until('the grandchild to stop too', () => beatAge(beat) > 500);
  supervisor.release('tree');
  await until('the grandchild to resume', () => beatAge(beat) < 200);
});

it('names the known children when asked for an unknown one', () => {
  supervisor = new ProcessSupervisor(path.join(dir, 'logs-unknown'));
  expect(() => supervisor.kill('nope')).toThrow('no child named "nope"; known: ');
});

it('runs a program as the child itself, so a chaos signal reaches it (a relay is coturn, not a wrapper)', async () => {
  supervisor = new ProcessSupervisor(path.join(dir, 'logs-program'));
  supervisor.add({
    name: 'prog',
    region: 'r',
    role: 'turn',
    entry: { file: 'sleep', args: ['60'] },
    env: {},
  });
  const pid = await until('the program to run', () => statusOf('prog').pid);
  expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toBe('sleep');
  supervisor.freeze('prog');
  // SIGSTOP is delivered asynchronously: the state turns T (stopped) shortly after the call.
  const state = () => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2];
  await until('the program to stop', () => (state() === 'T' ? true : undefined));
  expect(state()).toBe('T');
  supervisor.release('prog');
  supervisor.kill('prog');
  await until('the kill', () => statusOf('prog').lastExit);
  expect(statusOf('prog')).toMatchObject({ state: 'held', lastExit: { signal: 'SIGKILL' } });
});

it('counts a program that cannot start as a crash, with the reason in its log', async () => {
  const logs = path.join(dir, 'logs-missing');
  supervisor = new ProcessSupervisor(logs);
  const delays: number[] = [];
  supervisor.on('restart', (_s, delayMs) => delays.push(delayMs));
  supervisor.add({
    name: 'missing',
    region: 'r',
    role: 'turn',
    entry: { file: '/nonexistent/turnserver', args: [] },
    env: {},
  });
  await until('a restart', () => delays.length >= 1);
  expect(fs.readFileSync(path.join(logs, 'missing.log'), 'utf8')).toMatch(
    /cannot start: spawn \/nonexistent\/turnserver ENOENT/,
  );
});
