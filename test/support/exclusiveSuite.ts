/**
 * Suites that measure timing on real media (frame gaps across a region's death, no false switch under
 * jitter, a browser's recovery) run alone on the machine: jest runs two suites at once, and a timing
 * suite beside anything busy (a CDK synth, another stack) on two cores measures that instead of the
 * platform. CI once saw a 728 ms gap between two survivors that this machine measures at 150–300 ms.
 *
 * A machine-wide readers-writer lock, taken for every suite by test/support/suiteLock.ts:
 * - a suite that calls `exclusiveSuite()` at its top level takes the writer side. It holds the lock
 *   directory (an atomic `mkdir`, with its pid inside), then waits for the suites already running to
 *   finish;
 * - every other suite takes the reader side. It waits while a writer holds or waits for the lock, then
 *   leaves a file named by its pid in the readers' directory until it ends.
 * A crashed holder's lock or file (its pid dead) is taken over or swept.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const LOCK = path.join(os.tmpdir(), 'mrwebrtc-exclusive-suite.lock');
const READERS = path.join(os.tmpdir(), 'mrwebrtc-shared-suites');
/** How long a suite may wait for the others: the heaviest suites take a few minutes each. */
export const SUITE_LOCK_WAIT_MS = 20 * 60_000;
const POLL_MS = 250;

let exclusive = false;

/** Marks this suite as one that runs alone on the machine: call at the top level. */
export function exclusiveSuite(): void {
  exclusive = true;
}

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

/** Pids of the readers still running, other than this process; a dead reader's file is swept. */
function liveReaders(): number[] {
  const live: number[] = [];
  for (const name of fs.readdirSync(READERS)) {
    const pid = Number(name);
    if (pid === process.pid) continue;
    if (alive(pid)) live.push(pid);
    else fs.rmSync(path.join(READERS, name), { force: true });
  }
  return live;
}

async function waitUntil(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + SUITE_LOCK_WAIT_MS;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`waited ${SUITE_LOCK_WAIT_MS} ms for ${what}`);
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

/** Takes this suite's side of the lock (the writer's if it called `exclusiveSuite()`). */
export async function acquireSuiteLock(): Promise<void> {
  fs.mkdirSync(READERS, { recursive: true });
  // A file this worker process left behind (a suite that never reached its release) is no reader.
  fs.rmSync(readerFile(), { force: true });
  if (exclusive) {
    await waitUntil(`${LOCK} (another timing suite)`, tryTakeWriter);
    await waitUntil('the suites already running', () => liveReaders().length === 0);
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

export function releaseSuiteLock(): void {
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
