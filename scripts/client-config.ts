/**
 * Writes the client SDK's config JSON for a deployment.
 *
 *   npm run client-config -- [--target local|aws] [--outputs cdk-outputs.json] [--out file] [--cdk-json path]
 *
 * - local (default): the local stack's names: `http://api.<local.domain>:<lbPort>` then
 *   `http://api-backup.<local.backupDomain>:<lbPort>`, each region's `<region>.api.<local.domain>`, and
 *   the DNS emulator per zone (the backup zone has its own server, as it would at another DNS
 *   provider). Node clients only: a browser cannot use the emulator (the demo page uses addresses).
 * - aws: what `cdk deploy --all --outputs-file cdk-outputs.json` recorded: every region stack
 *   `<appName>-<region>` must carry `RegionApiUrl`; `ApiUrl` / `BackupApiUrl` (when present) override
 *   the names derived from the config, because the deployed names are what clients must use. With the
 *   backup zone at another DNS provider (`backupDns.provider: "external"`), it also prints on stderr the
 *   records to create there for every configured region, read from the stacks' `ExternalBackup*`
 *   outputs (lib/names.ts `externalBackupRecords`).
 *
 * Bad or missing input exits with status 2 and a message that names what is missing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, type DeploymentConfig, readDeploymentConfig } from '../lib/config';
import { externalBackupRecords, REGION_OUTPUTS, regionStackName } from '../lib/names';
import { ClientConfigError, type ClientConfigInput, parseClientConfig } from '../runtime/client/config';

const USAGE =
  'usage: npm run client-config -- [--target local|aws] [--outputs cdk-outputs.json] [--out file] [--cdk-json path]';

export class InputError extends Error {
  override name = 'InputError';
}

export interface CliOptions {
  readonly target: 'local' | 'aws';
  readonly outputs?: string;
  readonly out?: string;
  readonly cdkJson?: string;
}

export function parseArgs(argv: readonly string[]): CliOptions {
  const values: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    if (!['--target', '--outputs', '--out', '--cdk-json'].includes(flag!)) {
      throw new InputError(`unknown argument "${arg}"\n${USAGE}`);
    }
    const value = inline ?? argv[++i];
    if (value === undefined || value.startsWith('--'))
      throw new InputError(`${flag} needs a value\n${USAGE}`);
    values[flag!.slice(2)] = value;
  }
  const target = values.target ?? 'local';
  if (target !== 'local' && target !== 'aws') {
    throw new InputError(`--target must be "local" or "aws", got "${target}"`);
  }
  if (target === 'aws' && !values.outputs) {
    throw new InputError(
      '--target aws needs --outputs <file>: the stack outputs written by `npm run cdk -- deploy --all --outputs-file cdk-outputs.json`',
    );
  }
  return { target, outputs: values.outputs, out: values.out, cdkJson: values['cdk-json'] };
}

export function localClientConfig(cfg: DeploymentConfig): ClientConfigInput {
  const { domain, backupDomain, lbPort, dnsAddress, dnsPort, backupDnsPort, regions, dnsTtlSeconds } =
    cfg.local;
  return {
    apiUrls: [`http://api.${domain}:${lbPort}`, `http://api-backup.${backupDomain}:${lbPort}`],
    regionUrls: Object.fromEntries(regions.map((r) => [r.name, `http://${r.name}.api.${domain}:${lbPort}`])),
    dns: {
      servers: {
        [backupDomain]: `${dnsAddress}:${backupDnsPort}`,
        [domain]: `${dnsAddress}:${dnsPort}`,
      },
      // Never cache past the emulator's TTL: the chaos runs measure DNS failover at that TTL.
      maxCacheSeconds: dnsTtlSeconds,
    },
  };
}

type StackOutputs = Record<string, Record<string, unknown>>;

export function awsClientConfig(cfg: DeploymentConfig, outputs: unknown, source: string): ClientConfigInput {
  if (outputs === null || typeof outputs !== 'object' || Array.isArray(outputs)) {
    throw new InputError(
      `${source}: expected an object of stacks ({ "<stack>": { "<output>": "<value>" } })`,
    );
  }
  const stacks = outputs as StackOutputs;
  const problems: string[] = [];
  const regionUrls: Record<string, string> = {};
  const deployedApiUrls = new Set<string>();
  const deployedBackupUrls = new Set<string>();
  for (const { name } of cfg.regions) {
    const stackName = `${cfg.appName}-${name}`;
    const stack = stacks[stackName];
    if (!stack || typeof stack !== 'object') {
      problems.push(
        `stack "${stackName}" (region ${name}) is missing: deploy it, or remove ${name} from the config`,
      );
      continue;
    }
    const regionUrl = stack.RegionApiUrl;
    if (typeof regionUrl !== 'string' || !/^https?:\/\//.test(regionUrl)) {
      problems.push(`${stackName}.RegionApiUrl is missing or not a URL (got ${JSON.stringify(regionUrl)})`);
    } else {
      regionUrls[name] = regionUrl;
    }
    if (stack.Region !== undefined && stack.Region !== name) {
      problems.push(`${stackName}.Region is ${JSON.stringify(stack.Region)}, expected "${name}"`);
    }
    if (typeof stack.ApiUrl === 'string') deployedApiUrls.add(stack.ApiUrl);
    if (typeof stack.BackupApiUrl === 'string') deployedBackupUrls.add(stack.BackupApiUrl);
  }
  for (const [output, urls] of [
    ['ApiUrl', deployedApiUrls],
    ['BackupApiUrl', deployedBackupUrls],
  ] as const) {
    if (urls.size > 1)
      problems.push(`region stacks disagree on ${output}: ${[...urls].join(', ')}; redeploy them`);
  }
  if (problems.length > 0) throw new InputError(`${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return {
    apiUrls: [
      [...deployedApiUrls][0] ?? `https://api.${cfg.domain}`,
      [...deployedBackupUrls][0] ?? `https://api-backup.${cfg.backupDomain}`,
    ],
    regionUrls,
  };
}

/**
 * The records to create at the external backup DNS provider, one line each with how to route it; empty
 * with a Route 53 backup zone (the stacks write those records themselves). A record's line comes from the
 * region stack's output; a stack deployed before the switch to an external provider lacks it, and the
 * line then says where its target comes from.
 */
export function externalBackupRecordLines(cfg: DeploymentConfig, outputs: StackOutputs): string[] {
  if (cfg.backupDns.provider !== 'external') return [];
  const lines = [
    'backupDns.provider is "external": create these records at the backup DNS provider ' +
      '(docs/DEPLOY.md, "A backup zone at another DNS provider"):',
  ];
  for (const { name: region } of cfg.regions) {
    const stackName = regionStackName(cfg, region);
    const stack = outputs[stackName] ?? {};
    lines.push(`  ${region} (stack ${stackName}):`);
    for (const record of externalBackupRecords(cfg, region)) {
      const deployed = stack[record.output];
      const albName = stack[REGION_OUTPUTS.loadBalancerDnsName];
      const line =
        typeof deployed === 'string' && deployed.startsWith(`${record.name} ${record.type} `)
          ? deployed
          : record.target === 'api' && typeof albName === 'string'
            ? `${record.name} ${record.type} ${albName}`
            : `${record.name} ${record.type} <missing: output ${record.output} of ${stackName}; deploy it with backupDns.provider "external">`;
      lines.push(`    ${line}`, `      ${record.routing}`);
    }
  }
  return lines;
}

function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(
      `cannot read ${what} "${file}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`${what} "${file}" is not valid JSON: ${(err as Error).message}`);
  }
}

/** Runs the CLI; returns the exit status. */
export function main(
  argv: readonly string[],
  io: { stdout: (text: string) => void; stderr: (text: string) => void } = {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
  },
): number {
  try {
    const options = parseArgs(argv);
    if (options.cdkJson && !fs.existsSync(options.cdkJson)) {
      throw new InputError(`--cdk-json file "${options.cdkJson}" does not exist`);
    }
    const cfg = readDeploymentConfig(options.cdkJson ? { cdkJsonPath: path.resolve(options.cdkJson) } : {});
    const outputs = options.target === 'aws' ? readJsonFile(options.outputs!, '--outputs file') : undefined;
    const raw =
      options.target === 'local' ? localClientConfig(cfg) : awsClientConfig(cfg, outputs, options.outputs!);
    // awsClientConfig has checked that the outputs are an object of stacks.
    const recordLines = outputs ? externalBackupRecordLines(cfg, outputs as StackOutputs) : [];
    const text = `${JSON.stringify(parseClientConfig(raw), null, 2)}\n`;
    if (options.out) {
      try {
        fs.writeFileSync(options.out, text);
      } catch (err) {
        throw new InputError(
          `cannot write --out "${options.out}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      io.stderr(`wrote ${options.target} client config to ${options.out}\n`);
    } else {
      io.stdout(text);
    }
    // On stderr: stdout carries the client config alone, so it can be redirected to a file.
    if (recordLines.length > 0) io.stderr(`${recordLines.join('\n')}\n`);
    return 0;
  } catch (err) {
    if (err instanceof InputError || err instanceof ConfigError || err instanceof ClientConfigError) {
      io.stderr(`client-config: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
