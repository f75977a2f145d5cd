/**
 * The CDK entry point as users run it: through the cdk CLI (bad config) and as the CLI's subprocess
 * (good config), offline, into a temporary cloud assembly.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'node_modules', '.bin');

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

describe('bin/app.ts', () => {
  it('writes one template per region plus the table stack, for the given account', () => {
    const result = runApp({
      multiRegion: { regions: ['eu-west-1', 'ap-southeast-1'] },
      account: '210987654321',
    });
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.status).toBe(0);
    const templates = fs.readdirSync(outdir).filter((f) => f.endsWith('.template.json'));
    expect(templates.sort()).toEqual([
      'mrwebrtc-ap-southeast-1.template.json',
      'mrwebrtc-eu-west-1.template.json',
      'mrwebrtc-table.template.json',
    ]);
    const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8'));
    expect(manifest.artifacts['mrwebrtc-eu-west-1'].environment).toBe('aws://210987654321/eu-west-1');
    // No context lookups: synth must never need AWS credentials.
    expect(manifest.missing ?? []).toEqual([]);
  });

  it("fails `cdk synth` on an unknown region and a zero threshold with the config's message, no stack trace", () => {
    const bad = JSON.stringify({
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
    expect(fs.readdirSync(outdir).filter((f) => f.endsWith('.template.json'))).toEqual([]);
  });
});
