/**
 * The region-failure chaos script: proves and measures "losing a region removes only that region", and
 * (`--mode dns-outage`) "losing the primary DNS zone removes nothing from dual-URL clients".
 *
 *   npm run chaos -- --target local --region us-east-1 [--mode kill|blackhole|evacuate|dns-outage] [--clients N]
 *                    [--media N] [--duration S] [--json] [--out DIR] [--state-dir DIR]
 *   npm run chaos -- --target aws --region us-east-1 [--mode evacuate|scale-to-zero|blackhole] [--execute]
 *
 * Exit code: 0 pass, 1 fail (or steady state did not hold), 2 bad arguments.
 * Progress goes to stderr; `--json` prints exactly one JSON document on stdout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  ConfigError,
  readDeploymentConfig,
  requireAwsDeploymentConfig,
  type DeploymentConfig,
} from '../lib/config';
import { AWS_MODES, type AwsMode } from './chaos/aws-plan';
import { runAwsChaos } from './chaos/aws-run';
import { LocalTarget, type FaultMode } from './chaos/local-target';
import { runLocalChaos, type ChaosReport } from './chaos/local-run';
import { renderTimelineSvg } from './chaos/timeline-svg';

// These tools run on the developer's Node; the AWS SDK's notice about its future Node floor (the
// service images run Node 22) would land in the middle of the progress lines.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** One line on the media clients forced through the TURN relay: did their media come back, and when. */
function forcedRelaySummary(report: ChaosReport): string[] {
  const relayed = report.clients.filter((c) => c.withMedia && c.forcedRelay);
  if (relayed.length === 0) return [];
  const back = relayed.filter((c) => c.mediaAtMs !== null);
  const lost = relayed.filter((c) => c.detectedAtMs !== null);
  return [
    `Forced-relay media clients: ${relayed.length}; ${lost.length} lost their relay or server, media back through ` +
      `a relay for ${back.length} (${back.map((c) => `${c.id} ${fmtMs(c.mediaAtMs)}`).join(', ') || '—'})`,
  ];
}

const USAGE = `usage: npm run chaos -- --target local|aws --region <region> [options]
  --mode M           local: kill | blackhole | evacuate | dns-outage (default kill); aws: evacuate |
                     scale-to-zero | blackhole (the region stack's FIS experiment; needs the AWS CLI).
                     dns-outage: the primary zone drops every query while every region stays up
                     (--region then only places the media clients)
  --clients N        simulated clients (default 30; half dual-URL, half DNS-only)
  --media N          of those, clients with real media, all in one room: one near each other region
                     (their media from each other is media.survivors), the rest near --region in pairs
                     of one kind, the second pair forced through the TURN relay (default 6)
  --duration S       observation window in seconds (default: the DNS bound + TTL + 20 s; dns-outage:
                     TTL + 30 s)
  --regions N        regions of a stack this run starts when none runs (default: all)
  --health-interval S  health-check interval of a stack this run starts (default: the config's)
  --json             print the report as one JSON document on stdout
  --out DIR          where the report and the SVG timeline go (default .local/chaos)
  --state-dir DIR    local only: the stack's state directory (default .local): attach to the stack
                     running there, or start one that writes its state there
  --execute          aws only: act (without it the run only prints its plan)`;

class UsageError extends Error {}

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: 'string' },
        region: { type: 'string' },
        mode: { type: 'string' },
        clients: { type: 'string' },
        media: { type: 'string' },
        duration: { type: 'string' },
        regions: { type: 'string' },
        'health-interval': { type: 'string' },
        json: { type: 'boolean', default: false },
        out: { type: 'string' },
        'state-dir': { type: 'string' },
        execute: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = (name: string, raw: string | undefined, min: number, max: number): number | undefined => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
    return n;
  };
  if (values.target !== 'local' && values.target !== 'aws')
    throw new UsageError(
      `--target must be "local" or "aws"${values.target ? `, got "${values.target}"` : ''}`,
    );
  if (!values.region) throw new UsageError('--region is required (the region to fail)');
  const localModes = ['kill', 'blackhole', 'evacuate', 'dns-outage'];
  const awsModes: readonly string[] = AWS_MODES;
  const mode = values.mode ?? (values.target === 'local' ? 'kill' : 'evacuate');
  const modes = values.target === 'local' ? localModes : awsModes;
  if (!modes.includes(mode))
    throw new UsageError(
      `--mode for --target ${values.target} must be one of ${modes.join(', ')}, got "${mode}"`,
    );
  if (values.execute && values.target !== 'aws') throw new UsageError('--execute is only for --target aws');
  if (values['state-dir'] !== undefined && values.target !== 'local')
    throw new UsageError('--state-dir is only for --target local');
  const clients = num('clients', values.clients, 2, 200) ?? 30;
  const media = num('media', values.media, 0, 10) ?? 6;
  if (media > clients) throw new UsageError(`--media (${media}) cannot exceed --clients (${clients})`);
  const healthInterval =
    values['health-interval'] === undefined ? undefined : Number(values['health-interval']);
  if (healthInterval !== undefined && !(healthInterval >= 0.2 && healthInterval <= 30)) {
    throw new UsageError(
      `--health-interval must be a number of seconds from 0.2 to 30, got "${values['health-interval']}"`,
    );
  }
  return {
    target: values.target,
    region: values.region,
    mode,
    clients,
    media,
    durationS: num('duration', values.duration, 5, 3600) ?? null,
    regions: num('regions', values.regions, 1, 21),
    healthInterval,
    json: values.json ?? false,
    out: values.out ?? path.resolve(__dirname, '..', '.local', 'chaos'),
    stateDir: values['state-dir'] === undefined ? undefined : path.resolve(values['state-dir']),
    execute: values.execute ?? false,
  };
}

function fmtMs(ms: number | null): string {
  return ms === null ? '—' : `${(ms / 1000).toFixed(2)} s`;
}

/** The dns-outage table: connected clients and the wave that joined during the outage, by kind. */
function summarizeDnsOutage(report: ChaosReport): string {
  const { groups, dns } = report.dnsOutage!;
  const lines = [
    `Chaos: dns-outage (primary zone ${report.config.dnsTtlSeconds} s TTL; local, run ${report.runId}) — ${report.verdict.pass ? 'PASS' : 'FAIL'}`,
    '',
    'group                              clients  calls  failed  failed att.  lost  joined  backup names  join p95  recovery p95  media p95',
    ...groups.map((g) =>
      [
        g.group.padEnd(34),
        String(g.clients).padEnd(8),
        String(g.calls).padEnd(6),
        String(g.failedCalls).padEnd(7),
        String(g.failedAttempts).padEnd(12),
        String(g.sessionsLost).padEnd(5),
        `${g.joined}/${g.clients}`.padEnd(7),
        String(g.onBackupNames).padEnd(13),
        fmtMs(g.joinMs.p95).padEnd(9),
        fmtMs(g.recoveryMs.p95).padEnd(13),
        fmtMs(g.mediaMs.p95),
      ].join(' '),
    ),
    '',
    `DNS during the outage: primary answered ${dns.primaryAnswered}/${dns.primaryQueries} queries, backup ${dns.backupAnswered}/${dns.backupQueries}`,
    report.data
      ? `Data: ${report.data.itemsBefore} items before, ${report.data.itemsLost} lost; replicas ${report.data.replicasConverged ? 'converged' : 'DIFFER'} after rollback`
      : 'Data: not checked',
    `Rollback: ${report.rollback.ok ? `steady state again after ${fmtMs(report.rollback.steadyStateAfterMs)}` : `FAILED (${report.rollback.detail.join('; ')})`}`,
    '',
    ...report.verdict.checks.map((c) => `  ${c.pass ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.detail}`),
  ];
  return lines.join('\n');
}

export function summarize(report: ChaosReport): string {
  if (report.dnsOutage) return summarizeDnsOutage(report);
  const lines = [
    `Chaos: ${report.mode} ${report.region} (local, run ${report.runId}) — ${report.verdict.pass ? 'PASS' : 'FAIL'}`,
    '',
    'group                    clients  failed req  detected  recovered  recovery p50  p95       max       media p95',
    ...report.groups.map((g) =>
      [
        g.group.padEnd(24),
        String(g.clients).padEnd(8),
        String(g.failedRequests).padEnd(11),
        String(g.detected).padEnd(9),
        `${g.recovered}/${g.detected}`.padEnd(10),
        fmtMs(g.recoveryMs.p50).padEnd(13),
        fmtMs(g.recoveryMs.p95).padEnd(9),
        fmtMs(g.recoveryMs.max).padEnd(9),
        fmtMs(g.mediaMs.p95),
      ].join(' '),
    ),
    '',
    `DNS stopped answering ${report.region} after ${fmtMs(report.observation.dnsDroppedAfterMs)} (bound ${fmtMs(report.observation.dnsBoundMs)}; DNS-only clients add up to the ${report.config.dnsTtlSeconds} s TTL)`,
    report.data
      ? `Data: ${report.data.itemsBefore} items before on the survivors, ${report.data.itemsLost} lost; rooms ${report.data.roomsBefore} → ${report.data.roomsAfter}; replicas ${report.data.replicasConverged ? 'converged' : 'DIFFER'} after rollback`
      : 'Data: not checked',
    ...forcedRelaySummary(report),
    ...survivorMediaSummary(report),
    `Rollback: ${report.rollback.ok ? `steady state again after ${fmtMs(report.rollback.steadyStateAfterMs)}` : `FAILED (${report.rollback.detail.join('; ')})`}`,
    '',
    ...report.verdict.checks.map((c) => `  ${c.pass ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.detail}`),
  ];
  return lines.join('\n');
}

/** One line on the media between clients outside the failed region (their rooms span regions). */
function survivorMediaSummary(report: ChaosReport): string[] {
  const s = report.media?.survivors;
  if (!s || s.pairs === 0) return [];
  return [
    `Media between survivors: ${s.pairs} pairs, longest gap ${fmtMs(s.maxGapMs)}, p95 ${fmtMs(s.p95GapMs)} ` +
      `(${s.byPair.map((p) => `${p.a} ↔ ${p.b} ${fmtMs(p.gapMs)}`).join(', ')})`,
  ];
}

export function timelineSvg(report: ChaosReport): string {
  const byGroup = new Map<string, ChaosReport['clients'][number][]>();
  for (const c of report.clients) {
    const affected = c.apiRegionBefore === report.region || c.serverRegionBefore === report.region;
    const key = report.dnsOutage
      ? `${c.startedAfterInjection ? 'joined during outage' : 'connected'} / ${c.kind}`
      : `${affected ? 'affected' : 'survivors'} / ${c.kind}`;
    byGroup.set(key, [...(byGroup.get(key) ?? []), c]);
  }
  const lastEvent = Math.max(
    0,
    ...report.clients.map((c) => c.recoveredAtMs ?? c.detectedAtMs ?? 0),
    report.observation.dnsDroppedAfterMs ?? 0,
  );
  return renderTimelineSvg({
    title: `${report.mode} ${report.region}: client outages after the injection (${report.verdict.pass ? 'pass' : 'fail'})`,
    durationMs: Math.max(5_000, Math.min(report.observation.windowMs, lastEvent + 3_000)),
    markers: [
      { atMs: 0, label: 'injection', color: '#d2423b' },
      ...(report.observation.dnsDroppedAfterMs !== null
        ? [{ atMs: report.observation.dnsDroppedAfterMs, label: 'DNS drops region', color: '#4a7bd0' }]
        : []),
      { atMs: report.observation.dnsBoundMs, label: 'DNS bound', color: '#8a93a3' },
    ],
    groups: [...byGroup.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, clients]) => ({
        name,
        clients: clients.map((c) => ({
          id: c.id,
          detectedAtMs: c.detectedAtMs,
          recoveredAtMs: c.recoveredAtMs,
        })),
      })),
  });
}

type Cli = ReturnType<typeof parseCli>;
type Log = (line: string) => void;

async function main(): Promise<number> {
  let cli;
  try {
    cli = parseCli();
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  const started = Date.now();
  const log: Log = (line) =>
    process.stderr.write(`[chaos +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);

  const config = orConfigError(() => readDeploymentConfig());
  if (config === null) return 2;
  if (cli.target === 'aws') {
    const awsConfig = orConfigError(() => requireAwsDeploymentConfig(config));
    if (awsConfig === null) return 2;
    return runAwsChaos({
      config: awsConfig,
      region: cli.region,
      mode: cli.mode as AwsMode,
      execute: cli.execute,
      json: cli.json,
      log,
    });
  }
  return runLocal(cli, config, log);
}

/** `read()`, or null once a ConfigError's message is printed: a bad config is a usage error (exit 2). */
function orConfigError<T>(read: () => T): T | null {
  try {
    return read();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return null;
    }
    throw err;
  }
}

/** `--target local`: attach to (or start) the stack, run the experiment, save and print the report. */
async function runLocal(cli: Cli, config: DeploymentConfig, log: Log): Promise<number> {
  if (!config.local.regions.some((r) => r.name === cli.region)) {
    console.error(
      `error: --region "${cli.region}" is not a configured region (${config.local.regions.map((r) => r.name).join(', ')})`,
    );
    return 2;
  }
  let aborted = false;
  process.once('SIGINT', () => {
    aborted = true;
    log('Ctrl-C: ending the observation; rollback runs before exit (Ctrl-C again to force)');
    process.once('SIGINT', () => process.exit(130));
  });

  const target = await LocalTarget.attachOrStart({
    config,
    stateDir: cli.stateDir,
    regionCount: cli.regions,
    healthIntervalSeconds: cli.healthInterval,
    log,
  });
  let report: ChaosReport;
  try {
    if (!target.regionNames.includes(cli.region)) {
      console.error(
        `error: --region "${cli.region}" is not part of the running stack (${target.regionNames.join(', ')})`,
      );
      return 2;
    }
    report = await runLocalChaos(target, {
      region: cli.region,
      mode: cli.mode as FaultMode,
      clients: cli.clients,
      mediaClients: cli.media,
      durationS: cli.durationS,
      log,
      aborted: () => aborted,
    });
  } finally {
    await target.close();
  }

  const files = saveReport(report, cli.out);
  log(`report: ${files.json}, timeline: ${files.svg}`);
  if (cli.json) process.stdout.write(`${JSON.stringify({ ...report, files }, null, 2)}\n`);
  else console.log(`\n${summarize(report)}\n`);
  return report.verdict.pass ? 0 : 1;
}

/** Writes the report (JSON) and its timeline (SVG) under `dir`, named after the run. */
function saveReport(report: ChaosReport, dir: string): { json: string; svg: string } {
  fs.mkdirSync(dir, { recursive: true });
  const stem = path.join(dir, `${report.startedAt.replace(/[:.]/g, '-')}-${report.region}-${report.mode}`);
  fs.writeFileSync(`${stem}.json`, `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(`${stem}.svg`, timelineSvg(report));
  return { json: `${stem}.json`, svg: `${stem}.svg` };
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`chaos run failed: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
