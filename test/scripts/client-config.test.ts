import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseClientConfig } from '../../runtime/client/config';
import { main } from '../../scripts/client-config';

const root = path.resolve(__dirname, '../..');

function run(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const status = main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { status, stdout, stderr };
}

describe('npm run client-config', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'client-config-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function cdkJson(multiRegion: unknown): string {
    const file = path.join(dir, 'cdk.json');
    fs.writeFileSync(file, JSON.stringify({ context: { multiRegion } }));
    return file;
  }

  function outputsFile(outputs: unknown): string {
    const file = path.join(dir, 'cdk-outputs.json');
    fs.writeFileSync(file, JSON.stringify(outputs));
    return file;
  }

  it('writes the local stack config: api then api-backup, region names, DNS per zone', () => {
    const { status, stdout } = run(['--cdk-json', path.join(root, 'cdk.json')]);
    expect(status).toBe(0);
    const cfg = JSON.parse(stdout);
    expect(cfg.apiUrls).toEqual(['http://api.mr.test:8080', 'http://api-backup.mr-backup.test:8080']);
    expect(cfg.regionUrls).toEqual({
      'us-east-1': 'http://us-east-1.api.mr.test:8080',
      'eu-west-1': 'http://eu-west-1.api.mr.test:8080',
      'ap-southeast-1': 'http://ap-southeast-1.api.mr.test:8080',
    });
    expect(cfg.dns.servers).toEqual({ 'mr-backup.test': '127.0.0.1:5354', 'mr.test': '127.0.0.1:5353' });
    // What it writes is a valid client config, as is.
    expect(parseClientConfig(cfg)).toEqual(cfg);
  });

  it('follows the local topology of the deployment config', () => {
    const file = cdkJson({
      regions: ['eu-west-1', 'ap-southeast-1'],
      local: {
        domain: 'lab.test',
        backupDomain: 'lab-backup.test',
        lbPort: 9090,
        dnsPort: 6053,
        backupDnsPort: 6054,
        addresses: { 'eu-west-1': '127.0.9.1' },
      },
    });
    const out = path.join(dir, 'client.json');
    const { status, stderr } = run(['--cdk-json', file, '--out', out]);
    expect(status).toBe(0);
    expect(stderr).toContain(out);
    const cfg = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(cfg.apiUrls).toEqual(['http://api.lab.test:9090', 'http://api-backup.lab-backup.test:9090']);
    expect(cfg.regionUrls).toEqual({
      'eu-west-1': 'http://eu-west-1.api.lab.test:9090',
      'ap-southeast-1': 'http://ap-southeast-1.api.lab.test:9090',
    });
    expect(cfg.dns.servers).toEqual({
      'lab-backup.test': '127.0.0.1:6054',
      'lab.test': '127.0.0.1:6053',
    });
  });

  it('writes the AWS config from the stack outputs', () => {
    const file = cdkJson({
      regions: ['us-east-1', 'eu-west-1'],
      domain: 'rtc.example.com',
      backupDomain: 'rtc-backup.example.org',
    });
    const outputs = outputsFile({
      'mrwebrtc-us-east-1': {
        ApiUrl: 'https://api.rtc.example.com',
        BackupApiUrl: 'https://api-backup.rtc-backup.example.org',
        RegionApiUrl: 'https://us-east-1.api.rtc.example.com',
        Region: 'us-east-1',
      },
      'mrwebrtc-eu-west-1': {
        ApiUrl: 'https://api.rtc.example.com',
        BackupApiUrl: 'https://api-backup.rtc-backup.example.org',
        RegionApiUrl: 'https://eu-west-1.api.rtc.example.com',
        Region: 'eu-west-1',
      },
      'mrwebrtc-global': { TableName: 'mrwebrtc-rooms' },
    });
    const { status, stdout } = run(['--target', 'aws', '--outputs', outputs, '--cdk-json', file]);
    expect(status).toBe(0);
    const cfg = JSON.parse(stdout);
    expect(cfg.apiUrls).toEqual(['https://api.rtc.example.com', 'https://api-backup.rtc-backup.example.org']);
    expect(cfg.regionUrls).toEqual({
      'us-east-1': 'https://us-east-1.api.rtc.example.com',
      'eu-west-1': 'https://eu-west-1.api.rtc.example.com',
    });
    expect(cfg.dns).toBeUndefined();
  });

  it('prints the records to create at an external backup DNS provider, on stderr, for every region', () => {
    const cert = (region: string) =>
      `arn:aws:acm:${region}:210987654321:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d`;
    const file = cdkJson({
      regions: ['us-east-1', 'eu-west-1'],
      domain: 'rtc.example.com',
      backupDomain: 'rtc-backup.example.org',
      healthCheck: { requestIntervalSeconds: 30, failureThreshold: 2 },
      backupDns: {
        provider: 'external',
        certificateArns: { 'us-east-1': cert('us-east-1'), 'eu-west-1': cert('eu-west-1') },
      },
    });
    const usAlb = 'mrweb-LbSer-1A2B3C.us-east-1.elb.amazonaws.com';
    const usNlb = 'mrweb-TurnR-4D5E6F.elb.us-east-1.amazonaws.com';
    const outputs = outputsFile({
      'mrwebrtc-us-east-1': {
        RegionApiUrl: 'https://us-east-1.api.rtc.example.com',
        LoadBalancerDnsName: usAlb,
        ExternalBackupRegionRecord: `us-east-1.api-backup.rtc-backup.example.org CNAME ${usAlb}`,
        ExternalBackupApiRecord: `api-backup.rtc-backup.example.org CNAME ${usAlb}`,
        ExternalBackupTurnRecord: `turn.us-east-1.api-backup.rtc-backup.example.org CNAME ${usNlb}`,
      },
      // Deployed before the switch to the external provider: only the ALB's name is known.
      'mrwebrtc-eu-west-1': {
        RegionApiUrl: 'https://eu-west-1.api.rtc.example.com',
        LoadBalancerDnsName: 'mrweb-LbSer-7G8H9I.eu-west-1.elb.amazonaws.com',
      },
    });
    const { status, stdout, stderr } = run(['--target', 'aws', '--outputs', outputs, '--cdk-json', file]);
    expect(status).toBe(0);
    // stdout is the client config alone.
    expect(parseClientConfig(JSON.parse(stdout)).apiUrls).toEqual([
      'https://api.rtc.example.com',
      'https://api-backup.rtc-backup.example.org',
    ]);
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^backupDns\.provider is "external": create these records at the backup DNS provider/,
    );
    const records = lines.filter((l) => / CNAME /.test(l)).map((l) => l.trim());
    expect(records).toEqual([
      `us-east-1.api-backup.rtc-backup.example.org CNAME ${usAlb}`,
      `api-backup.rtc-backup.example.org CNAME ${usAlb}`,
      `turn.us-east-1.api-backup.rtc-backup.example.org CNAME ${usNlb}`,
      'eu-west-1.api-backup.rtc-backup.example.org CNAME mrweb-LbSer-7G8H9I.eu-west-1.elb.amazonaws.com',
      'api-backup.rtc-backup.example.org CNAME mrweb-LbSer-7G8H9I.eu-west-1.elb.amazonaws.com',
      'turn.eu-west-1.api-backup.rtc-backup.example.org CNAME <missing: output ExternalBackupTurnRecord of mrwebrtc-eu-west-1; deploy it with backupDns.provider "external">',
    ]);
    // How to route and check the api-backup member, with the config's health check settings.
    expect(stderr).toContain(
      'HTTPS GET https://eu-west-1.api-backup.rtc-backup.example.org/health with SNI, healthy on 200, every 30 s, unhealthy after 2 failures',
    );
  });

  it('prints no records with a Route 53 backup zone: the stacks write them', () => {
    const file = cdkJson({ regions: ['eu-west-1'], backupHostedZoneId: 'Z08987654ZYXWVUTSRQP' });
    const outputs = outputsFile({
      'mrwebrtc-eu-west-1': { RegionApiUrl: 'https://eu-west-1.api.example.com' },
    });
    const { status, stderr } = run(['--target', 'aws', '--outputs', outputs, '--cdk-json', file]);
    expect(status).toBe(0);
    expect(stderr).toBe('');
  });

  it('derives the API names from the config when the outputs do not carry them', () => {
    const file = cdkJson({
      regions: ['eu-west-1'],
      domain: 'rtc.example.com',
      backupDomain: 'rtc-backup.example.org',
    });
    const outputs = outputsFile({
      'mrwebrtc-eu-west-1': { RegionApiUrl: 'https://eu-west-1.api.rtc.example.com' },
    });
    const cfg = JSON.parse(run(['--target=aws', `--outputs=${outputs}`, '--cdk-json', file]).stdout);
    expect(cfg.apiUrls).toEqual(['https://api.rtc.example.com', 'https://api-backup.rtc-backup.example.org']);
  });

  it('names the missing stacks and outputs', () => {
    const file = cdkJson({ regions: ['us-east-1', 'eu-west-1', 'ap-southeast-1'] });
    const outputs = outputsFile({
      'mrwebrtc-us-east-1': { RegionApiUrl: 'https://us-east-1.api.example.com', Region: 'us-east-1' },
      'mrwebrtc-eu-west-1': { ApiUrl: 'https://api.example.com', Region: 'us-west-2' },
    });
    const { status, stdout, stderr } = run(['--target', 'aws', '--outputs', outputs, '--cdk-json', file]);
    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('mrwebrtc-eu-west-1.RegionApiUrl is missing');
    expect(stderr).toContain('mrwebrtc-eu-west-1.Region is "us-west-2", expected "eu-west-1"');
    expect(stderr).toContain('stack "mrwebrtc-ap-southeast-1" (region ap-southeast-1) is missing');
  });

  it.each([
    [['--target', 'aws'], /--target aws needs --outputs <file>/],
    [['--target', 'gcp'], /--target must be "local" or "aws", got "gcp"/],
    [['--region', 'x'], /unknown argument "--region"/],
    [['--out'], /--out needs a value/],
    [
      ['--target', 'aws', '--outputs', '/nonexistent/outputs.json'],
      /cannot read --outputs file "\/nonexistent\/outputs.json": ENOENT/,
    ],
    [['--cdk-json', '/nonexistent/cdk.json'], /--cdk-json file "\/nonexistent\/cdk.json" does not exist/],
    [
      ['--out', '/nonexistent/dir/client.json'],
      /cannot write --out "\/nonexistent\/dir\/client.json": ENOENT/,
    ],
  ])('rejects %j with a message', (argv, message) => {
    const { status, stderr } = run(argv);
    expect(status).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('reports an outputs file that is not JSON, and a bad deployment config by field', () => {
    const garbage = path.join(dir, 'garbage.json');
    fs.writeFileSync(garbage, '{ not json');
    expect(run(['--target', 'aws', '--outputs', garbage]).stderr).toMatch(/is not valid JSON/);
    const bad = cdkJson({ regions: ['mars-north-1'] });
    const { status, stderr } = run(['--cdk-json', bad]);
    expect(status).toBe(2);
    expect(stderr).toMatch(/regions\[0\].*must be an AWS region/);
  });

  it('as a process: exit status 2 and no stack trace', () => {
    const result = spawnSync(
      path.join(root, 'node_modules/.bin/tsx'),
      [path.join(root, 'scripts/client-config.ts'), '--target', 'aws'],
      { encoding: 'utf8', cwd: root },
    );
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^client-config: --target aws needs --outputs/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  }, 30_000);
});
