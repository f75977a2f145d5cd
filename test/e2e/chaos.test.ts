/**
 * The chaos scenario end to end: a real three-region local stack (its own addresses and ports, so it
 * runs beside a developer's `npm start`), the chaos CLI run against it as a user runs it (its own
 * process, real SDK clients, a kill of us-east-1, then a primary-zone outage), and each report's parts
 * checked one by one.
 *
 * The CLI runs in a process of its own, as a user runs it, not in this jest worker: the survivors'
 * frame gaps are timed on the clients' own event loop, which in a worker is also the worker's (its
 * garbage collection of what earlier suites left, its other timers). Run inside a worker, two full runs
 * measured 670 and 728 ms, where this machine otherwise measures 150–460 ms.
 *
 * It measures timing on real media, so it runs alone on the machine (test/support/suiteLock.ts):
 * @exclusive-suite
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDeploymentConfig } from '../../lib/config';
import { LocalTarget } from '../../scripts/chaos/local-target';
import type { ChaosReport } from '../../scripts/chaos/local-run';

jest.setTimeout(420_000);

const ROOT = path.resolve(__dirname, '..', '..');
const config = parseDeploymentConfig({
  local: {
    addresses: { 'us-east-1': '127.0.31.1', 'eu-west-1': '127.0.32.1', 'ap-southeast-1': '127.0.33.1' },
    lbPort: 18080,
    dynamoPort: 18000,
    mediaPortBase: 19000,
    mediaServersPerRegion: 1,
    dnsPort: 15353,
    backupDnsPort: 15354,
    dashboardPort: 13000,
    dnsTtlSeconds: 2,
    healthCheckIntervalSeconds: 1,
    replicationLagMs: 200,
  },
});

let target: LocalTarget;
let report: ChaosReport;
let outage: ChaosReport;
const exitCodes: Record<string, number | null> = {};
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaos-e2e-'));

/** `npm run chaos -- --target local --json …` against this suite's stack; resolves with its report. */
function chaosCli(args: readonly string[]): Promise<{ report: ChaosReport; code: number | null }> {
  const cli = [path.join(ROOT, 'scripts/chaos.ts'), '--target', 'local', '--state-dir', stateDir];
  const out = ['--out', path.join(stateDir, 'reports'), '--json'];
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), [...cli, ...args, ...out], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      try {
        resolve({ report: JSON.parse(stdout) as ChaosReport, code });
      } catch {
        reject(
          new Error(`chaos ${args.join(' ')} exited ${code} without a report:\n${stderr.slice(-4_000)}`),
        );
      }
    });
  });
}

beforeAll(async () => {
  // The stack runs in a child process that the two CLI runs attach to through its state directory.
  target = await LocalTarget.attachOrStart({ config, stateDir, log: () => undefined });
  // One media client near each other region (the survivors), four near us-east-1, the second pair of
  // those forced through the TURN relay (scripts/chaos/local-run.ts); all six in one room, cascaded.
  const kill = await chaosCli(
    '--region us-east-1 --mode kill --clients 8 --media 6 --duration 40'.split(' '),
  );
  report = kill.report;
  exitCodes.kill = kill.code;
  // The same stack again, with the primary DNS zone failing instead of a region.
  const dns = await chaosCli(
    '--region us-east-1 --mode dns-outage --clients 8 --media 2 --duration 25'.split(' '),
  );
  outage = dns.report;
  exitCodes.dnsOutage = dns.code;
});

afterAll(async () => {
  await target?.close();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

describe('chaos: kill us-east-1 on the local stack', () => {
  it('held steady state before injecting, with rooms in more than one region', () => {
    expect(report.steadyState.ok).toBe(true);
    expect(Object.keys(report.steadyState.roomsByRegion).length).toBeGreaterThanOrEqual(2);
    expect(report.injection.at).not.toBeNull();
    // Time zero is when the stack signalled the region, after the control request reached it.
    expect(report.injection.requestMs).toBeGreaterThanOrEqual(0);
    expect(report.injection.actions.join(' ')).toMatch(/SIGKILL us-east-1/);
  });

  it('gave clients outside us-east-1 zero failed requests', () => {
    const survivors = report.clients.filter(
      (c) => c.apiRegionBefore !== 'us-east-1' && c.serverRegionBefore !== 'us-east-1',
    );
    expect(survivors.length).toBeGreaterThan(0);
    expect(survivors.every((c) => c.requestsAfterInjection > 0)).toBe(true);
    expect(survivors.map((c) => [c.id, c.failedRequestsAfterInjection])).toEqual(
      survivors.map((c) => [c.id, 0]),
    );
  });

  it('recovered every affected client, media included, on servers outside us-east-1', () => {
    const affected = report.clients.filter(
      (c) => c.apiRegionBefore === 'us-east-1' || c.serverRegionBefore === 'us-east-1',
    );
    expect(affected.length).toBeGreaterThan(0);
    for (const c of affected.filter((x) => x.detectedAtMs !== null)) {
      expect({ id: c.id, recovered: c.recoveredAtMs !== null }).toEqual({ id: c.id, recovered: true });
      expect(c.serverRegionAfter).not.toBe('us-east-1');
    }
    const media = report.clients.filter((c) => c.withMedia && c.serverRegionBefore === 'us-east-1');
    expect(media).toHaveLength(4);
    expect(media.map((c) => [c.id, c.mediaAtMs !== null])).toEqual(media.map((c) => [c.id, true]));
    // The relayed ones lost us-east-1's relay with the region and got media back through another's.
    const relayed = media.filter((c) => c.forcedRelay);
    expect(relayed).toHaveLength(2);
    expect(relayed.every((c) => c.detectedAtMs !== null && c.serverRegionAfter !== 'us-east-1')).toBe(true);
    expect(report.groups.find((g) => g.group === 'affected / dual-url')!.recovered).toBeGreaterThan(0);
  });

  it('kept media flowing between the peers outside us-east-1 (one room, cascaded across regions)', () => {
    const survivors = report.clients.filter((c) => c.withMedia && c.serverRegionBefore !== 'us-east-1');
    expect(survivors.map((c) => c.serverRegionBefore).sort()).toEqual(['ap-southeast-1', 'eu-west-1']);
    expect(survivors.every((c) => c.detectedAtMs === null)).toBe(true);
    expect(report.media!.survivors.pairs).toBe(1);
    console.log(`chaos kill: survivors' longest media gap ${report.media!.survivors.maxGapMs} ms`);
    expect(report.media!.survivors.maxGapMs).toBeLessThan(500);
    expect(report.verdict.checks.find((c) => c.name.startsWith('media between peers'))!.pass).toBe(true);
  });

  it('lost no item of the surviving replicas, and every replica converged after the rollback', () => {
    expect(report.data).toMatchObject({ itemsLost: 0, replicasConverged: true });
    expect(report.data!.itemsBefore).toBeGreaterThan(0);
    expect(report.data!.roomsAfter).toBe(report.data!.roomsBefore);
  });

  it('saw DNS drop us-east-1 within interval x threshold plus slack', () => {
    expect(report.observation.dnsDroppedAfterMs).not.toBeNull();
    expect(report.observation.dnsDroppedAfterMs!).toBeLessThanOrEqual(report.observation.dnsBoundMs);
  });

  it('rolled back to steady state and passed', () => {
    expect(report.rollback.ok).toBe(true);
    expect(report.verdict.checks.filter((c) => !c.pass)).toEqual([]);
    expect(report.verdict.pass).toBe(true);
    // The CLI's exit status says so, and its report and timeline are saved.
    expect(exitCodes.kill).toBe(0);
    const files = (report as ChaosReport & { files: { json: string; svg: string } }).files;
    expect(JSON.parse(fs.readFileSync(files.json, 'utf8'))).toMatchObject({ runId: report.runId });
    expect(fs.readFileSync(files.svg, 'utf8')).toMatch(/^<svg[^>]*>/);
  });
});

describe('chaos: dns-outage (the primary zone silent, every region up) on the local stack', () => {
  it('failed the primary zone and restored it, with every region up throughout', () => {
    expect(outage.steadyState.ok).toBe(true);
    expect(outage.injection.actions.join(' ')).toMatch(/primary zone mr\.test drops every query/);
    expect(outage.dnsOutage!.dns.primaryQueries).toBeGreaterThan(0);
    // The zone's own record: its server answered nothing from the moment it was failed. (The external
    // watch's counts are reported too; its resolver may still answer from its own cache.)
    const emulator = outage.dnsOutage!.dns.emulator!;
    const failedAt = emulator.zoneChanges.find((c) => c.zone === 'primary' && c.failed)!.atMs;
    expect(emulator.primaryAnswers.filter((a) => a.atMs >= failedAt)).toEqual([]);
    expect(outage.dnsOutage!.dns.backupAnswered).toBe(outage.dnsOutage!.dns.backupQueries);
    expect(outage.rollback.ok).toBe(true);
  });

  it('cost dual-URL clients no failed request and no session', () => {
    const dual = outage.clients.filter((c) => c.kind === 'dual-url');
    expect(dual.every((c) => c.callsAfterInjection > 0 || c.startedAfterInjection)).toBe(true);
    expect(dual.map((c) => [c.id, c.failedCallsAfterInjection, c.sessionDownAtMs])).toEqual(
      dual.map((c) => [c.id, 0, null]),
    );
  });

  it('let every dual-URL client that joined during the outage join, signal by backup names and get media', () => {
    const joiners = outage.clients.filter((c) => c.kind === 'dual-url' && c.startedAfterInjection);
    expect(joiners.length).toBeGreaterThan(0);
    for (const c of joiners) {
      expect({ id: c.id, joined: c.joinedAtMs !== null }).toEqual({ id: c.id, joined: true });
      expect(new URL(c.signalingUrl!).hostname).toMatch(/\.api-backup\.mr-backup\.test$/);
    }
    expect(joiners.filter((c) => c.withMedia).every((c) => c.mediaAtMs !== null)).toBe(true);
  });

  it('passed', () => {
    expect(outage.verdict.checks.filter((c) => !c.pass)).toEqual([]);
    expect(outage.verdict.pass).toBe(true);
    expect(exitCodes.dnsOutage).toBe(0);
  });
});
