/**
 * Suites that measure timing on real media (frame gaps across a region's death, no false switch under
 * jitter, a browser's recovery, the event-loop shedder) run alone on the machine: jest runs two suites
 * at once, and a timing suite beside anything busy (a CDK synth, another stack, even ts-jest compiling
 * the next suite) on two cores measures that instead of the platform.
 *
 * A machine-wide readers-writer lock, taken by every suite's environment (test/support/
 * suiteLockEnvironment.ts) before the suite is even compiled, and let go after its last hook:
 * - a timing suite (`@exclusive-suite` in its docblock) takes the writer side. It holds the lock
 *   directory (an atomic `mkdir`, with its pid inside), then waits for the suites already running to
 *   finish;
 * - every other suite takes the reader side. It waits while a writer holds the lock, then leaves a file
 *   named by its pid in the readers' directory until it ends.
 * A crashed holder's lock or file (its pid dead) is taken over or swept.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Where the lock lives: the machine's temporary directory (a test of the lock itself gives its own). */
const LOCK_ROOT = process.env.MRWEBRTC_SUITE_LOCK_DIR ?? os.tmpdir();
const LOCK = path.join(LOCK_ROOT, 'mrwebrtc-exclusive-suite.lock');
const READERS = path.join(LOCK_ROOT, 'mrwebrtc-shared-suites');
/** How long a suite may wait for the others: the heaviest suites take a few minutes each. */
const WAIT_MS = 20 * 60_000;
const POLL_MS = 250;

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function writerAlive(): boolean {
  try {
    return alive(Number(fs.readFileSync(path.join(LOCK, 'pid'), 'utf8')));
  } catch (err) {
    // No pid file yet (the writer is between mkdir and write) counts as alive.
    return (err as NodeJS.ErrnoException).code === 'ENOENT' && fs.existsSync(LOCK);
  }
}

/** Whether a suite other than this process's is running; a dead reader's file is swept. */
function othersReading(): boolean {
  let live = false;
  for (const name of fs.readdirSync(READERS)) {
    const pid = Number(name);
    if (pid === process.pid) continue;
    if (alive(pid)) live = true;
    else fs.rmSync(path.join(READERS, name), { force: true });
  }
  return live;
}

async function waitUntil(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`waited ${WAIT_MS} ms for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function tryTakeWriter(): boolean {
  try {
    fs.mkdirSync(LOCK);
    fs.writeFileSync(path.join(LOCK, 'pid'), String(process.pid));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (!writerAlive()) fs.rmSync(LOCK, { recursive: true, force: true });
    return false;
  }
}

const readerFile = (): string => path.join(READERS, String(process.pid));

/** Takes a suite's side of the lock: the writer's for a timing suite, else a reader's. */
export async function acquireSuiteLock(exclusive: boolean): Promise<void> {
  fs.mkdirSync(READERS, { recursive: true });
  // A file this worker process left behind (a suite that never reached its release) is no reader.
  fs.rmSync(readerFile(), { force: true });
  if (exclusive) {
    await waitUntil(`${LOCK} (another timing suite)`, tryTakeWriter);
    await waitUntil('the suites already running', () => !othersReading());
    return;
  }
  for (;;) {
    await waitUntil(`${LOCK} (a timing suite)`, () => !writerAlive());
    fs.writeFileSync(readerFile(), '');
    // A writer that took the lock between the check and the file waits for this reader: step back.
    if (!writerAlive()) return;
    fs.rmSync(readerFile(), { force: true });
  }
}

export function releaseSuiteLock(exclusive: boolean): void {
  if (!exclusive) {
    fs.rmSync(readerFile(), { force: true });
    return;
  }
  try {
    if (Number(fs.readFileSync(path.join(LOCK, 'pid'), 'utf8')) === process.pid) {
      fs.rmSync(LOCK, { recursive: true, force: true });
    }
  } catch {
    // Taken over, or gone already.
  }
}
