/**
 * The CDK entry point as users run it: through the cdk CLI and npm scripts (bad config, placeholder
 * review synth) and as the CLI's subprocess (context in CDK_CONTEXT_JSON), offline, into a temporary
 * cloud assembly.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
// Its cdk CLI subprocesses keep both cores busy for a minute and a half; the suite lock keeps the
// media-timing suites from running beside it (test/support/suiteLock.ts).

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'node_modules', '.bin');

/** A deployable config: nothing from the docs' examples. */
const REAL = {
  domain: 'calls.acme-rtc.com',
  hostedZoneId: 'Z07123456ABCDEFGHIJK',
  backupDomain: 'acme-rtc-fallback.net',
  backupHostedZoneId: 'Z08987654ZYXWVUTSRQP',
  tableOwnerRegion: 'eu-west-1',
  regions: ['eu-west-1', 'ap-southeast-1'],
};
const REAL_ACCOUNT = '210987654321';

let outdir: string;
beforeEach(() => {
  outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-app-'));
});
afterEach(() => fs.rmSync(outdir, { recursive: true, force: true }));

/** Runs bin/app.ts the way the CLI does: context in CDK_CONTEXT_JSON, assembly into CDK_OUTDIR. */
function runApp(context: Record<string, unknown>) {
  return spawnSync(path.join(BIN, 'tsx'), ['bin/app.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      ...process.env,
      CDK_CONTEXT_JSON: JSON.stringify(context),
      CDK_OUTDIR: outdir,
      CDK_DEFAULT_ACCOUNT: '',
    },
  });
}

function templates(): string[] {
  return fs.readdirSync(outdir).filter((f) => f.endsWith('.template.json'));
}

function rulesOf(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(outdir, file), 'utf8')).Rules ?? {};
}

describe('bin/app.ts', () => {
  it('writes one template per region plus the table stack, for the given account, deployable', () => {
    const result = runApp({ multiRegion: REAL, account: REAL_ACCOUNT });
    expect(result.stderr).not.toMatch(/error|placeholder/i);
    expect(result.status).toBe(0);
    expect(templates().sort()).toEqual([
      'mrwebrtc-ap-southeast-1.template.json',
      'mrwebrtc-eu-west-1.template.json',
      'mrwebrtc-table.template.json',
    ]);
    const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8'));
    expect(manifest.artifacts['mrwebrtc-eu-west-1'].environment).toBe(`aws://${REAL_ACCOUNT}/eu-west-1`);
    expect(manifest.artifacts['mrwebrtc-table'].environment).toBe(`aws://${REAL_ACCOUNT}/eu-west-1`);
    // No context lookups: synth must never need AWS credentials.
    expect(manifest.missing ?? []).toEqual([]);
    for (const file of templates())
      expect(Object.keys(rulesOf(file))).not.toContain('RefusePlaceholderConfig');
  });

  it('adds the us-east-1 monitoring stack only when health check ids are configured', () => {
    const monitoring = {
      healthCheckIds: {
        'eu-west-1': '0b8c2f5e-1f0a-4a59-9d3c-2a7c1a9e5b11',
        'ap-southeast-1': '7d1e9a40-3c2b-4f6e-8a15-c0ffee123456',
      },
    };
    const result = runApp({ multiRegion: { ...REAL, monitoring }, account: REAL_ACCOUNT });
    expect(result.status).toBe(0);
    expect(templates()).toContain('mrwebrtc-monitoring.template.json');
    const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8'));
    expect(manifest.artifacts['mrwebrtc-monitoring'].environment).toBe(`aws://${REAL_ACCOUNT}/us-east-1`);
    // Nothing depends on it.
    for (const [name, artifact] of Object.entries(
      manifest.artifacts as Record<string, { dependencies?: string[] }>,
    )) {
      if (name !== 'mrwebrtc-monitoring')
        expect(artifact.dependencies ?? []).not.toContain('mrwebrtc-monitoring');
    }
  });

  it('refuses placeholder values before building anything, naming each field', () => {
    const result = runApp({
      multiRegion: { tableOwnerRegion: 'eu-west-1', regions: ['eu-west-1'] },
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Refusing to build the stacks');
    for (const field of [
      'domain: "example.com"',
      'backupDomain: "example.net"',
      'hostedZoneId: "Z0000000000000EXAMPLE"',
      'backupHostedZoneId: "Z0000000000000BACKUP"',
      'account: "111111111111"',
    ]) {
      expect(result.stderr).toContain(field);
    }
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(templates()).toEqual([]);
  });

  it("refuses the docs' example zone ids too", () => {
    const result = runApp({
      multiRegion: { ...REAL, hostedZoneId: 'Z0123456789PRIMARY', backupHostedZoneId: 'Z0123456789BACKUP' },
      account: REAL_ACCOUNT,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('hostedZoneId: "Z0123456789PRIMARY" is the example zone id');
    expect(result.stderr).toContain('backupHostedZoneId: "Z0123456789BACKUP" is the example zone id');
  });

  it('refuses a config without an explicit table owner', () => {
    const { tableOwnerRegion: _omitted, ...withoutOwner } = REAL;
    const result = runApp({ multiRegion: withoutOwner, account: REAL_ACCOUNT });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('tableOwnerRegion: missing');
    expect(templates()).toEqual([]);
  });

  it('marks templates undeployable when placeholders are allowed, wherever the flag came from', () => {
    // As if allowPlaceholders sat in cdk.context.json or ~/.cdk.json: the CLI merges those into the
    // same context, so the app cannot tell; the rule in every template is what stops a deploy.
    const result = runApp({ multiRegion: { tableOwnerRegion: 'eu-west-1' }, allowPlaceholders: true });
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('Note: synthesized with placeholder values, for review only');
    expect(templates()).toHaveLength(4);
    for (const file of templates()) {
      const rule = rulesOf(file).RefusePlaceholderConfig as { Assertions: { Assert: unknown }[] };
      expect(rule.Assertions[0]!.Assert).toEqual({
        'Fn::Equals': [{ Ref: 'BootstrapVersion' }, 'synthesized-with-placeholders'],
      });
    }
  });

  it('`npm run synth` reviews the example config offline, says so, and passes extra CLI arguments on', () => {
    const result = spawnSync('npm', ['run', 'synth', '--', '-o', outdir], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 180_000,
      env: { ...process.env, CDK_DEFAULT_ACCOUNT: '' },
    });
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('synthesized with placeholder values');
    expect(templates().sort()).toEqual([
      'mrwebrtc-ap-southeast-1.template.json',
      'mrwebrtc-eu-west-1.template.json',
      'mrwebrtc-table.template.json',
      'mrwebrtc-us-east-1.template.json',
    ]);
  });

  it("fails `cdk synth` on an unknown region and a zero threshold with the config's message, no stack trace", () => {
    const bad = JSON.stringify({
      tableOwnerRegion: 'eu-west-1',
      regions: ['eu-west-1', 'mars-east-1'],
      healthCheck: { failureThreshold: 0 },
    });
    const result = spawnSync(
      path.join(BIN, 'cdk'),
      ['synth', '--no-notices', '--quiet', '-o', outdir, '-c', `multiRegion=${bad}`],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' },
      },
    );
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('regions[1]: got "mars-east-1"; must be an AWS region');
    expect(result.stderr).toContain(
      'healthCheck.failureThreshold: got 0; Route 53 allows a failure threshold from 1 to 10',
    );
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(templates()).toEqual([]);
  });
});
