/**
 * Suites that measure timing on real media (frame gaps across a region's death, no false switch under
 * jitter, a browser's recovery) run one at a time on the machine: jest runs two suites at once, and two
 * such suites on two cores starve each other's media threads and measure that instead of the platform.
 *
 * `exclusiveSuite()` in a suite's top level holds a machine-wide lock (an atomic `mkdir`, with the
 * holder's pid inside so a crashed holder's lock is taken over) from before its first hook to after its
 * last. Other suites, the light ones, keep running beside it. A suite that keeps both cores busy for
 * long (the CDK app's CLI synths) takes it too, so that no timing suite runs beside it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const LOCK = path.join(os.tmpdir(), 'mrwebrtc-exclusive-suite.lock');
/** How long a suite may wait for the others: the heaviest suites take a few minutes each. */
const WAIT_MS = 20 * 60_000;

function holderAlive(): boolean {
  try {
    const pid = Number(fs.readFileSync(path.join(LOCK, 'pid'), 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // No pid file yet (the holder is between mkdir and write) counts as alive; a dead pid does not.
    return (
      (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EPERM'
    );
  }
}

async function acquire(): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      fs.writeFileSync(path.join(LOCK, 'pid'), String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (!holderAlive()) fs.rmSync(LOCK, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`another timing suite held ${LOCK} for ${WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function release(): void {
  try {
    if (Number(fs.readFileSync(path.join(LOCK, 'pid'), 'utf8')) === process.pid) {
      fs.rmSync(LOCK, { recursive: true, force: true });
    }
  } catch {
    // Not ours, or gone already.
  }
}

/** Holds the machine-wide lock for this suite: call at the top level, before the suite's own hooks. */
export function exclusiveSuite(): void {
  beforeAll(acquire, WAIT_MS + 10_000);
  afterAll(release);
}
