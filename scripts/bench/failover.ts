/**
 * failover: the chaos scenario repeated to give distributions. For `kill` and `blackhole` of each run's
 * region: time to recover (from the injection until a client's session and API calls work again) and
 * time to media, for dual-URL clients vs DNS-only clients. DNS-only clients are bounded by the
 * health-check settings plus the TTL; that bound is reported next to them.
 *
 * `dns-outage` (the primary zone silent, every region up) is the third row: there "recovery" is how long
 * a client that joins during the outage takes from its start to joined (and to media), and the
 * DNS-only column shows how many of those joined at all (the baseline: none is expected to).
 *
 * Every time is measured from the moment the fault took effect (the stack reports when it signalled the
 * region's processes or switched the zone off), not from the bench's control request, whose duration
 * is reported apart (`controlRequestMs`).
 *
 * The bench starts its own three-region stack (addresses 127.0.4x.1, other ports: it runs beside a
 * developer's `npm start`) with a 2 s health-check interval, so a run takes seconds rather than the
 * minute the AWS interval (10 s x 3) needs; the bound scales with the interval, the dual-URL path does not.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalTarget } from '../chaos/local-target';
import { runLocalChaos, type ChaosReport } from '../chaos/local-run';
import { benchStackConfig } from './support/stackConfig';
import { benchHeader, emit, percentileOf, progress, round, type BenchResult } from './report';

const MODES = ['kill', 'blackhole', 'dns-outage'] as const;
const HEALTH_INTERVAL_S = 2;
const DNS_TTL_S = 2;
/** Targets for dual-URL clients on the local stack (issue 9). */
const TARGET_P95_MS = { kill: 2_000, blackhole: 6_000 } as const;
/** Targets for dual-URL clients' media gap, fault to remote video decoding again (issue 19). */
const MEDIA_TARGET_P95_MS = { kill: 800, blackhole: 2_000 } as const;
type RegionMode = keyof typeof TARGET_P95_MS;

interface Sample {
  readonly mode: Mode;
  readonly kind: 'dual-url' | 'dns-only';
  readonly recoveryMs: number;
  readonly media: boolean;
}

type Mode = (typeof MODES)[number];
type ModeResult = ReturnType<typeof modeResults>[number];

export async function run({ quick }: { quick: boolean }): Promise<void> {
  const started = Date.now();
  const runsPerMode = quick ? 1 : 5;
  const clients = quick ? 12 : 24;
  const config = benchStackConfig({
    addressOctet: 4,
    portBase: 20_000,
    healthCheckIntervalSeconds: HEALTH_INTERVAL_S,
    dnsTtlSeconds: DNS_TTL_S,
  });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-failover-'));
  progress(`starting a 3-region stack (health every ${HEALTH_INTERVAL_S} s, TTL ${DNS_TTL_S} s)`);
  const target = await LocalTarget.attachOrStart({ config, stateDir, log: (l) => progress(l.trim()) });
  let reports: ChaosReport[];
  try {
    reports = await repeatChaos(target, runsPerMode, clients);
  } finally {
    await target.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }

  const hc = reports[0]!.config.healthCheck;
  // The chaos bound already holds one TTL: a DNS-only client's cached answer outlives the record by that.
  const dnsBoundMs = reports[0]!.observation.dnsBoundMs;
  const results = modeResults(reports, dnsBoundMs);
  emit(
    {
      ...benchHeader('failover', quick, new Date(started)),
      results: { healthCheck: hc, dnsTtlSeconds: DNS_TTL_S, clientsPerRun: clients, modes: results },
      targets: results.flatMap((r) => failoverTargets(r, dnsBoundMs)),
    },
    summaryRows(results, dnsBoundMs),
  );
}

/** `runsPerMode` chaos runs per mode, the failed region rotating over the stack's regions. */
async function repeatChaos(
  target: LocalTarget,
  runsPerMode: number,
  clients: number,
): Promise<ChaosReport[]> {
  const regions = target.regionNames;
  const reports: ChaosReport[] = [];
  for (const mode of MODES) {
    for (let i = 0; i < runsPerMode; i++) {
      const region = regions[i % regions.length]!;
      progress(`run ${reports.length + 1}/${MODES.length * runsPerMode}: ${mode} ${region}`);
      const report = await runLocalChaos(target, {
        region,
        mode,
        clients,
        mediaClients: 4,
        durationS: null,
        log: () => undefined,
        aborted: () => false,
      });
      progress(
        `  ${report.verdict.pass ? 'pass' : 'FAIL'}: ${
          report.verdict.checks
            .filter((c) => !c.pass)
            .map((c) => c.detail)
            .join('; ') || 'all checks hold'
        }`,
      );
      reports.push(report);
    }
  }
  return reports;
}

/**
 * Recovery (and, for media clients, media) times of the affected clients that recovered; for a DNS
 * outage, the join (and media) times of the clients that joined during it, from their own start.
 */
function recoverySamples(reports: readonly ChaosReport[]): Sample[] {
  return reports.flatMap((r) =>
    r.mode === 'dns-outage'
      ? r.clients
          .filter((c) => c.startedAtMs !== null && c.joinedAtMs !== null)
          .flatMap((c) => [
            {
              mode: 'dns-outage' as const,
              kind: c.kind,
              recoveryMs: c.joinedAtMs! - c.startedAtMs!,
              media: false,
            },
            ...(c.mediaAtMs !== null
              ? [
                  {
                    mode: 'dns-outage' as const,
                    kind: c.kind,
                    recoveryMs: c.mediaAtMs - c.startedAtMs!,
                    media: true,
                  },
                ]
              : []),
          ])
      : r.clients
          .filter(
            (c) =>
              c.recoveredAtMs !== null &&
              (c.apiRegionBefore === r.region || c.serverRegionBefore === r.region),
          )
          .flatMap((c) => [
            { mode: r.mode as Mode, kind: c.kind, recoveryMs: c.recoveredAtMs!, media: false },
            ...(c.mediaAtMs !== null
              ? [{ mode: r.mode as Mode, kind: c.kind, recoveryMs: c.mediaAtMs, media: true }]
              : []),
          ]),
  );
}

/** Per mode: runs, passes, recovery distributions per client kind, DNS drop times, survivors' failures. */
function modeResults(reports: readonly ChaosReport[], dnsBoundMs: number) {
  const samples = recoverySamples(reports);
  const stats = (mode: Mode, kind: Sample['kind'], media: boolean) => {
    const values = samples
      .filter((s) => s.mode === mode && s.kind === kind && s.media === media)
      .map((s) => s.recoveryMs);
    return {
      n: values.length,
      p50Ms: round(percentileOf(values, 50), 0),
      p95Ms: round(percentileOf(values, 95), 0),
      maxMs: values.length ? Math.max(...values) : NaN,
    };
  };
  return MODES.map((mode) => ({
    mode,
    runs: reports.filter((r) => r.mode === mode).length,
    passed: reports.filter((r) => r.mode === mode && r.verdict.pass).length,
    dualUrl: { recovery: stats(mode, 'dual-url', false), media: stats(mode, 'dual-url', true) },
    dnsOnly: {
      recovery: stats(mode, 'dns-only', false),
      media: stats(mode, 'dns-only', true),
      boundMs: dnsBoundMs,
    },
    dnsDroppedAfterMs: reports.filter((r) => r.mode === mode).map((r) => r.observation.dnsDroppedAfterMs),
    /**
     * How long each run's control request took until the fault took effect: time zero of every figure
     * here is the fault's moment, so this harness latency is in none of them.
     */
    controlRequestMs: reports.filter((r) => r.mode === mode).map((r) => r.injection.requestMs),
    survivorsFailedRequests: reports
      .filter((r) => r.mode === mode)
      .reduce(
        (sum, r) => sum + r.groups.filter((g) => !g.affected).reduce((s, g) => s + g.failedRequests, 0),
        0,
      ),
    /** dns-outage: failed calls of dual-URL clients, and joins during the outage per kind (joined/started). */
    dualUrlFailedCalls: reports
      .filter((r) => r.mode === mode)
      .flatMap((r) => r.clients)
      .filter((c) => c.kind === 'dual-url')
      .reduce((sum, c) => sum + c.failedCallsAfterInjection, 0),
    joinsDuringOutage: Object.fromEntries(
      (['dual-url', 'dns-only'] as const).map((kind) => {
        const joiners = reports
          .filter((r) => r.mode === mode)
          .flatMap((r) => r.clients)
          .filter((c) => c.kind === kind && c.startedAfterInjection);
        return [
          kind,
          { started: joiners.length, joined: joiners.filter((c) => c.joinedAtMs !== null).length },
        ];
      }),
    ),
  }));
}

function seconds(ms: number): string {
  return Number.isNaN(ms) ? '—' : `${(ms / 1000).toFixed(2)} s`;
}

function failoverTargets(r: ModeResult, dnsBoundMs: number): BenchResult['targets'] {
  if (r.mode === 'dns-outage') {
    const dual = r.joinsDuringOutage['dual-url']!;
    return [
      {
        name: 'dual-URL failed requests during a primary-zone outage',
        target: '0',
        measured: String(r.dualUrlFailedCalls),
        met: r.dualUrlFailedCalls === 0,
      },
      {
        name: 'dual-URL joins during a primary-zone outage',
        target: '100%',
        measured: `${dual.joined}/${dual.started}`,
        met: dual.started > 0 && dual.joined === dual.started,
      },
    ];
  }
  const mode: RegionMode = r.mode;
  return [
    {
      name: `dual-URL p95 recovery after ${r.mode}`,
      target: `<= ${TARGET_P95_MS[mode] / 1000} s`,
      measured: seconds(r.dualUrl.recovery.p95Ms),
      met: r.dualUrl.recovery.p95Ms <= TARGET_P95_MS[mode],
    },
    {
      name: `dual-URL p95 media gap after ${r.mode}`,
      target: `<= ${MEDIA_TARGET_P95_MS[mode] / 1000} s`,
      measured: seconds(r.dualUrl.media.p95Ms),
      met: r.dualUrl.media.p95Ms <= MEDIA_TARGET_P95_MS[mode],
    },
    {
      name: `DNS-only p95 recovery after ${r.mode}`,
      target: `<= bound ${seconds(dnsBoundMs)}`,
      measured: seconds(r.dnsOnly.recovery.p95Ms),
      met: r.dnsOnly.recovery.p95Ms <= dnsBoundMs + 5_000,
    },
    {
      name: `survivors' failed requests (${r.mode})`,
      target: '0',
      measured: String(r.survivorsFailedRequests),
      met: r.survivorsFailedRequests === 0,
    },
  ];
}

function summaryRows(results: readonly ModeResult[], dnsBoundMs: number): (string | number)[][] {
  return [
    [
      'mode',
      'runs (pass)',
      'dual-URL p50',
      'p95',
      'media p95',
      'DNS-only p50',
      'p95',
      'media p95',
      'DNS bound',
    ],
    ...results.map((r) =>
      r.mode === 'dns-outage'
        ? [
            `${r.mode} (join)`,
            `${r.runs} (${r.passed})`,
            seconds(r.dualUrl.recovery.p50Ms),
            seconds(r.dualUrl.recovery.p95Ms),
            seconds(r.dualUrl.media.p95Ms),
            `joined ${r.joinsDuringOutage['dns-only']!.joined}/${r.joinsDuringOutage['dns-only']!.started}`,
            '—',
            '—',
            '—',
          ]
        : [
            r.mode,
            `${r.runs} (${r.passed})`,
            seconds(r.dualUrl.recovery.p50Ms),
            seconds(r.dualUrl.recovery.p95Ms),
            seconds(r.dualUrl.media.p95Ms),
            seconds(r.dnsOnly.recovery.p50Ms),
            seconds(r.dnsOnly.recovery.p95Ms),
            seconds(r.dnsOnly.media.p95Ms),
            seconds(dnsBoundMs),
          ],
    ),
  ];
}
