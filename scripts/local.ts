/**
 * `npm start`: the whole platform on one machine. Three regions (by default) on 127.0.n.1, each with
 * its DynamoDB replica, LB service and media servers; the Route 53 emulator; the dashboard.
 *
 *   npm start -- [--regions N] [--media N] [--health-interval S] [--lag MS]
 */
import { parseArgs } from 'node:util';
import { readDeploymentConfig, type DeploymentConfig } from '../lib/config';
import { startLocalStack, type LocalStack } from '../runtime/local/stack';

// These tools run on the developer's Node; the AWS SDK's notice about its future Node floor (the
// service images run Node 22) would land in the middle of the progress lines.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const STARTUP_TIMEOUT_MS = 60_000;

const USAGE = `usage: npm start -- [--regions N] [--media N] [--health-interval S] [--lag MS]
  --regions N          run the first N configured regions (default: all)
  --media N            media servers per region (default: config local.mediaServersPerRegion)
  --health-interval S  DNS emulator health-check interval in seconds (default: the AWS interval)
  --lag MS             replication lag between regions in ms (default: config local.replicationLagMs)`;

function usageError(message: string): never {
  console.error(`error: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function intFlag(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max)
    usageError(`--${name} must be a number from ${min} to ${max}, got "${raw}"`);
  return n;
}

function parseCli(config: DeploymentConfig) {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        regions: { type: 'string' },
        media: { type: 'string' },
        'health-interval': { type: 'string' },
        lag: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    usageError((err as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  return {
    regionCount: intFlag('regions', values.regions, 1, config.local.regions.length),
    media: intFlag('media', values.media, 1, 8),
    healthInterval: intFlag('health-interval', values['health-interval'], 0.2, 30),
    lag: intFlag('lag', values.lag, 0, 60_000),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const base = readDeploymentConfig();
  const cli = parseCli(base);
  const config: DeploymentConfig = {
    ...base,
    local: {
      ...base.local,
      healthCheckIntervalSeconds: cli.healthInterval ?? base.local.healthCheckIntervalSeconds,
      replicationLagMs: cli.lag ?? base.local.replicationLagMs,
    },
  };

  const started = Date.now();
  const log = (line: string) =>
    console.log(`[local +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
  let stack: LocalStack | undefined;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping every region...`);
    await stack?.stop();
    log('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  try {
    stack = await startLocalStack({ config, regionCount: cli.regionCount, mediaPerRegion: cli.media, log });
    log('waiting for every region to be healthy (LB /health and the DNS emulator)...');
    await stack.waitHealthy(STARTUP_TIMEOUT_MS);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    console.error('logs of every process are in .local/logs/');
    await stack?.stop();
    process.exit(1);
  }

  const state = stack.state();
  const domain = state.domain;
  console.log(
    `\nAll ${state.regions.length} regions healthy in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`,
  );
  console.log(
    table([
      ['region', 'address', 'LB', 'DNS names', 'DynamoDB', 'TURN relay', 'media servers'],
      ...state.regions.map((r) => [
        r.name,
        r.address,
        r.lbUrl,
        `${new URL(r.apiUrl).hostname}, ${new URL(r.backupApiUrl).hostname}`,
        r.dynamoEndpoint,
        `${r.turn.host}:${r.turn.port} udp/tcp, :${r.turn.tlsPort} tls`,
        r.media.map((m) => `${m.id} :${m.signalingPort}`).join(', '),
      ]),
    ]),
  );
  const token = await stack.devToken('demo');
  console.log(`
Dashboard        ${state.dashboardUrl}
Browser demo     ${state.dashboardUrl}demo/
DNS (primary)    dig @${state.dns.primary.replace(':', ' -p ')} api.${domain}
DNS (backup)     dig @${state.dns.backup.replace(':', ' -p ')} api-backup.${state.backupDomain}
Zone outage      curl -s -X POST -H 'content-type: application/json' -d '{}' ${state.controlUrl}/api/dns/zones/primary/fail   (…/restore undoes it)
Join (room demo) curl -s -X POST -H "authorization: Bearer ${token}" -H 'content-type: application/json' -d '{}' ${state.regions[0]!.lbUrl}/v1/rooms/demo/join
TURN (coturn)    every join answer's iceServers: the serving region's relay, a credential for that peer
                 turnutils_uclient -u <username> -w <credential> -e ${state.regions[0]!.address} ${state.regions[0]!.turn.host}
More tokens      npm run token -- --room <room> --sub <name>
Chaos            npm run chaos -- --target local --region ${state.regions[0]!.name} --mode kill|blackhole|evacuate|dns-outage
State            .local/state.json   Logs: .local/logs/

Ctrl-C stops everything.`);
}

void main();
