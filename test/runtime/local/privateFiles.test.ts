/**
 * What the local stack writes for other tools is this user's only (issue #15, "Secrets stay secret"):
 * `.local/state.json` holds the dev key sets and is 0600, `.local/logs/` holds room names, identities
 * and addresses and is 0700, whatever the umask and whatever a previous run (or an older version) left
 * there with wider modes. The real writer and the real supervisor with a real child, under umask 0.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProcessSupervisor } from '../../../runtime/local/ProcessSupervisor';
import { keepStateFile, stateFilePath, type LocalStackState } from '../../../runtime/local/stateFile';

const modeOf = (file: string) => fs.statSync(file).mode & 0o777;

let dir: string;
let umask: number;
let supervisor: ProcessSupervisor | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'private-files-'));
  // Nothing but the code's own modes stands between the files and other users.
  umask = process.umask(0);
});

afterEach(async () => {
  process.umask(umask);
  await supervisor?.stopAll();
  supervisor = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, fn: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('the log folder is made 0700, even when it exists with a wider mode, and each log file is 0600', async () => {
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir, { mode: 0o755 });
  fs.chmodSync(logDir, 0o755);
  supervisor = new ProcessSupervisor(logDir);
  expect(modeOf(logDir)).toBe(0o700);

  supervisor.add({
    name: 'talker',
    region: 'r',
    role: 'lb',
    entry: { file: '/bin/sh', args: ['-c', 'echo started; exec sleep 30'] },
    env: {},
  });
  const log = path.join(logDir, 'talker.log');
  await until(
    'the child to log',
    () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('started'),
  );
  expect(modeOf(log)).toBe(0o600);
});

test('state.json is written 0600, replacing a wider file left behind, and stays 0600 on every rewrite', async () => {
  const logDir = path.join(dir, 'logs');
  supervisor = new ProcessSupervisor(logDir);
  const file = stateFilePath(dir);
  fs.writeFileSync(file, '{}\n', { mode: 0o644 });
  fs.chmodSync(file, 0o644);

  let writes = 0;
  // Only the mode is under test; the content is whatever the stack's state source gives.
  const state = () => ({ pid: process.pid, startedAt: ++writes }) as unknown as LocalStackState;
  const writer = keepStateFile(file, state, supervisor);
  try {
    expect(modeOf(file)).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ pid: process.pid, startedAt: 1 });

    // A child's exit rewrites the file (its pids changed): still 0600.
    fs.chmodSync(file, 0o644);
    supervisor.add({
      name: 'short',
      region: 'r',
      role: 'lb',
      entry: { file: '/bin/true', args: [] },
      env: {},
    });
    await until('the rewrite on exit', () => writes >= 2);
    expect(modeOf(file)).toBe(0o600);
  } finally {
    writer.stopRefreshing();
    writer.remove();
  }
  expect(fs.existsSync(file)).toBe(false);
});
