import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ConfigError,
  parseAwsDeploymentConfig,
  parseDeploymentConfig,
  readDeploymentConfig,
  requireAwsDeploymentConfig,
} from '../../lib/config';
import { backupDnsSettings } from '../../lib/app';

function problemsOf(raw: unknown): string[] {
  try {
    parseDeploymentConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected the config to be rejected');
}

describe('deployment config', () => {
  it('defaults to three regions, and derives no table owner from them', () => {
    const cfg = parseDeploymentConfig({});
    expect(cfg.regions.map((r) => r.name)).toEqual(['us-east-1', 'eu-west-1', 'ap-southeast-1']);
    expect(cfg.tableOwnerRegion).toBeUndefined();
    expect(cfg.healthCheck).toEqual({ requestIntervalSeconds: 10, failureThreshold: 3 });
    expect(cfg.tableName).toBe('mrwebrtc-rooms');
    expect(cfg.joinTokenKeysSecretName).toBe('mrwebrtc/join-token-keys');
    expect(cfg.mediaTokenKeysSecretName).toBe('mrwebrtc/media-token-keys');
    expect(cfg.monitoring).toEqual({ alarmEmails: [], healthCheckIds: {} });
    expect(cfg.local.regions).toEqual([
      { name: 'us-east-1', address: '127.0.1.1' },
      { name: 'eu-west-1', address: '127.0.2.1' },
      { name: 'ap-southeast-1', address: '127.0.3.1' },
    ]);
    expect(cfg.local.healthCheckIntervalSeconds).toBe(10);
  });

  it('derives per-region defaults from the region, not its position in the list', () => {
    const three = parseDeploymentConfig({});
    const two = parseDeploymentConfig({ regions: ['eu-west-1', 'ap-southeast-1'] });
    const cidr = (cfg: typeof three, name: string) => cfg.regions.find((r) => r.name === name)!.vpcCidr;
    expect(cidr(two, 'eu-west-1')).toBe(cidr(three, 'eu-west-1'));
    expect(cidr(two, 'ap-southeast-1')).toBe(cidr(three, 'ap-southeast-1'));
  });

  it('requires the table owner on the AWS path, and keeps it whatever the order of regions', () => {
    expect(() => parseAwsDeploymentConfig({})).toThrow(ConfigError);
    try {
      parseAwsDeploymentConfig({ regions: ['eu-west-1'], healthCheck: { failureThreshold: 0 } });
    } catch (err) {
      const problems = (err as ConfigError).problems;
      // Every problem at once: the schema's and the missing owner.
      expect(problems).toHaveLength(2);
      expect(problems[1]).toMatch(
        /^tableOwnerRegion: missing; the AWS deployment needs the table stack's region named explicitly/,
      );
      expect(problems[1]).toMatch(/never follows the order of regions/);
    }
    const owner = (regions: string[]) =>
      parseAwsDeploymentConfig({ tableOwnerRegion: 'ap-southeast-1', regions }).tableOwnerRegion;
    expect(owner(['us-east-1', 'eu-west-1', 'ap-southeast-1'])).toBe('ap-southeast-1');
    expect(owner(['ap-southeast-1', 'us-east-1'])).toBe('ap-southeast-1');
    expect(owner(['eu-west-1', 'ap-southeast-1'])).toBe('ap-southeast-1');
    expect(() => requireAwsDeploymentConfig(parseDeploymentConfig({}))).toThrow(/tableOwnerRegion: missing/);
    expect(
      requireAwsDeploymentConfig(parseDeploymentConfig({ tableOwnerRegion: 'eu-west-1' })).tableOwnerRegion,
    ).toBe('eu-west-1');
  });

  it('checks the monitoring settings: emails, and health check ids of configured regions only', () => {
    const cfg = parseDeploymentConfig({
      monitoring: {
        alarmEmails: ['ops@rtc-ops.net'],
        healthCheckIds: { 'eu-west-1': '0b8c2f5e-1f0a-4a59-9d3c-2a7c1a9e5b11' },
      },
    });
    expect(cfg.monitoring.healthCheckIds).toEqual({ 'eu-west-1': '0b8c2f5e-1f0a-4a59-9d3c-2a7c1a9e5b11' });
    expect(problemsOf({ monitoring: { alarmEmails: ['not-an-email'] } })[0]).toMatch(
      /^monitoring\.alarmEmails\[0\]: got "not-an-email"; must be an email address/,
    );
    expect(problemsOf({ monitoring: { healthCheckIds: { 'eu-west-1': 'hc-1' } } })[0]).toMatch(
      /^monitoring\.healthCheckIds\.eu-west-1: got "hc-1"; must be a Route 53 health check id/,
    );
    expect(
      problemsOf({
        monitoring: { healthCheckIds: { 'us-west-2': '0b8c2f5e-1f0a-4a59-9d3c-2a7c1a9e5b11' } },
      })[0],
    ).toMatch(/^monitoring\.healthCheckIds\.us-west-2: .*names a region that is not configured/);
  });

  it('rejects a region listed twice, naming the field and the value', () => {
    expect(problemsOf({ regions: ['us-east-1', 'eu-west-1', 'us-east-1'] })).toEqual([
      'regions[2]: got "us-east-1"; "us-east-1" is listed twice; list each region once',
    ]);
  });

  it('rejects a table owner that is not one of the regions and says what removing it takes', () => {
    const [problem] = problemsOf({ tableOwnerRegion: 'us-west-2' });
    expect(problem).toMatch(/^tableOwnerRegion: got "us-west-2"; is not one of the configured regions/);
    expect(problem).toMatch(/us-east-1, eu-west-1, ap-southeast-1/);
    expect(problem).toMatch(/re-homing the table stack first \(docs\/DEPLOY.md/);
  });

  it('rejects a health-check interval other than 10 or 30 and a threshold outside 1-10', () => {
    expect(problemsOf({ healthCheck: { requestIntervalSeconds: 15, failureThreshold: 0 } })).toEqual([
      'healthCheck.requestIntervalSeconds: got 15; Route 53 health checks run every 10 or 30 seconds; use 10 or 30',
      'healthCheck.failureThreshold: got 0; Route 53 allows a failure threshold from 1 to 10',
    ]);
    expect(
      parseDeploymentConfig({ healthCheck: { requestIntervalSeconds: 30 } }).healthCheck
        .requestIntervalSeconds,
    ).toBe(30);
  });

  it('rejects unknown regions, unknown fields and a backup domain equal to the primary', () => {
    expect(problemsOf({ regions: ['us-east-9'] })[0]).toMatch(
      /^regions\[0\]: got "us-east-9"; must be an AWS region: one of us-east-1/,
    );
    expect(problemsOf({ regoins: [] })).toEqual([
      '(root): unknown field(s) "regoins"; remove them or fix the spelling',
    ]);
    expect(problemsOf({ domain: 'a.com', backupDomain: 'a.com' })[0]).toMatch(
      /^backupDomain: got "a.com"; must differ from domain/,
    );
    // The local stack's two zones fail alone only if neither contains the other.
    expect(parseDeploymentConfig({}).local).toMatchObject({
      domain: 'mr.test',
      backupDomain: 'mr-backup.test',
    });
    for (const backupDomain of ['mr.test', 'b.mr.test']) {
      expect(problemsOf({ local: { backupDomain } })[0]).toMatch(
        /^local\.backupDomain: .*must be a zone of its own, neither local\.domain/,
      );
    }
  });

  it('takes browser origins for CORS and rejects anything that is not an exact origin', () => {
    expect(parseDeploymentConfig({}).corsOrigins).toEqual([]);
    expect(parseDeploymentConfig({ corsOrigins: ['https://app.example.com:8443'] }).corsOrigins).toEqual([
      'https://app.example.com:8443',
    ]);
    expect(problemsOf({ corsOrigins: ['https://app.example.com/'] })[0]).toMatch(
      /^corsOrigins\[0\]: got "https:\/\/app.example.com\/"; must be an origin such as/,
    );
    expect(problemsOf({ corsOrigins: ['app.example.com'] })[0]).toMatch(
      /^corsOrigins\[0\]: .*must be an origin/,
    );
    expect(problemsOf({ corsOrigins: ['ftp://files.example.com'] })[0]).toMatch(/^corsOrigins\[0\]: /);
  });

  it('puts every problem in one readable message', () => {
    expect(() => parseDeploymentConfig({ regions: [], appName: 'X' })).toThrow(
      /Invalid deployment config \(cdk\.json context "multiRegion"\):\n {2}- appName: got "X"; .*\n {2}- regions: got \[\]; must list at least one region/,
    );
  });

  it('accepts the JSON string form that `-c multiRegion=...` passes', () => {
    expect(parseDeploymentConfig('{"regions":["eu-west-1"]}').regions.map((r) => r.name)).toEqual([
      'eu-west-1',
    ]);
    expect(problemsOf('{not json')[0]).toMatch(/^\(root\): not valid JSON/);
  });

  it('reads cdk.json with overrides on top', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
    const file = path.join(dir, 'cdk.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ context: { multiRegion: { appName: 'calls', regions: ['eu-west-1', 'us-east-1'] } } }),
    );
    const cfg = readDeploymentConfig({ cdkJsonPath: file, override: { regions: ['us-east-1'] } });
    expect(cfg.appName).toBe('calls');
    expect(cfg.regions.map((r) => r.name)).toEqual(['us-east-1']);
    expect(cfg.tableOwnerRegion).toBeUndefined();
    fs.rmSync(dir, { recursive: true });
  });

  it('reads the repository cdk.json, which names its table owner', () => {
    const cfg = readDeploymentConfig();
    expect(cfg.regions).toHaveLength(3);
    expect(requireAwsDeploymentConfig(cfg).tableOwnerRegion).toBe('eu-west-1');
  });

  describe('backup DNS', () => {
    const ACCOUNT = '210987654321';
    const arn = (region: string, id = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d') =>
      `arn:aws:acm:${region}:${ACCOUNT}:certificate/${id}`;
    const EXTERNAL = {
      regions: ['us-east-1', 'eu-west-1'],
      backupDns: {
        provider: 'external',
        certificateArns: { 'us-east-1': arn('us-east-1'), 'eu-west-1': arn('eu-west-1') },
      },
    };

    it('is a Route 53 zone by default, and backupHostedZoneId still sets it', () => {
      expect(parseDeploymentConfig({}).backupDns).toEqual({
        provider: 'route53',
        hostedZoneId: 'Z0000000000000BACKUP',
        hostedZoneIdField: 'backupHostedZoneId',
      });
      expect(parseDeploymentConfig({ backupHostedZoneId: 'Z08987654ZYXWVUTSRQP' }).backupDns).toEqual({
        provider: 'route53',
        hostedZoneId: 'Z08987654ZYXWVUTSRQP',
        hostedZoneIdField: 'backupHostedZoneId',
      });
    });

    it('gives region stacks the same settings from backupDns route53 as from the shorthand', () => {
      const shorthand = parseAwsDeploymentConfig({
        tableOwnerRegion: 'eu-west-1',
        backupHostedZoneId: 'Z08987654ZYXWVUTSRQP',
      });
      const explicit = parseAwsDeploymentConfig({
        tableOwnerRegion: 'eu-west-1',
        backupDns: { provider: 'route53', hostedZoneId: 'Z08987654ZYXWVUTSRQP' },
      });
      expect(explicit.backupDns).toMatchObject({ hostedZoneIdField: 'backupDns.hostedZoneId' });
      for (const region of ['us-east-1', 'eu-west-1']) {
        expect(backupDnsSettings(explicit, region)).toEqual(backupDnsSettings(shorthand, region));
      }
    });

    it('refuses backupHostedZoneId together with backupDns, naming both', () => {
      const problems = problemsOf({ ...EXTERNAL, backupHostedZoneId: 'Z08987654ZYXWVUTSRQP' });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(
        /^backupHostedZoneId: got "Z08987654ZYXWVUTSRQP"; is set together with backupDns; keep one/,
      );
    });

    it('takes an external provider with a certificate per region, the TURN one defaulting to it', () => {
      const cfg = parseAwsDeploymentConfig({
        ...EXTERNAL,
        tableOwnerRegion: 'eu-west-1',
        backupDns: {
          ...EXTERNAL.backupDns,
          turnCertificateArns: { 'eu-west-1': arn('eu-west-1', 'ffffffff-4e5f-4a6b-8c7d-9e0f1a2b3c4d') },
        },
      });
      expect(backupDnsSettings(cfg, 'us-east-1')).toEqual({
        provider: 'external',
        certificateArn: arn('us-east-1'),
        turnCertificateArn: arn('us-east-1'),
      });
      expect(backupDnsSettings(cfg, 'eu-west-1')).toEqual({
        provider: 'external',
        certificateArn: arn('eu-west-1'),
        turnCertificateArn: arn('eu-west-1', 'ffffffff-4e5f-4a6b-8c7d-9e0f1a2b3c4d'),
      });
    });

    it('refuses a certificate of another region: a load balancer uses ACM certificates of its own region only', () => {
      const problems = problemsOf({
        ...EXTERNAL,
        backupDns: {
          provider: 'external',
          certificateArns: { 'us-east-1': arn('us-east-1'), 'eu-west-1': arn('us-east-1') },
          turnCertificateArns: { 'us-east-1': arn('eu-west-1') },
        },
      });
      expect(problems).toEqual([
        expect.stringMatching(
          /^backupDns\.certificateArns\.eu-west-1: got "arn:aws:acm:us-east-1:[^;]*; is a certificate in us-east-1, but the eu-west-1 load balancers can only use an ACM certificate of eu-west-1; import the certificate into ACM in eu-west-1/,
        ),
        expect.stringMatching(
          /^backupDns\.turnCertificateArns\.us-east-1: got "arn:aws:acm:eu-west-1:[^;]*; is a certificate in eu-west-1, but the us-east-1 load balancers/,
        ),
      ]);
    });

    it('refuses a region without a certificate, a certificate for an unconfigured region, and what is not an ARN', () => {
      expect(
        problemsOf({
          ...EXTERNAL,
          backupDns: { provider: 'external', certificateArns: { 'eu-west-1': arn('eu-west-1') } },
        }),
      ).toEqual([
        expect.stringMatching(
          /^backupDns\.certificateArns: got \{[^;]*; has no certificate for us-east-1; with an external backup provider/,
        ),
      ]);
      expect(
        problemsOf({
          ...EXTERNAL,
          backupDns: {
            ...EXTERNAL.backupDns,
            certificateArns: {
              ...EXTERNAL.backupDns.certificateArns,
              'ap-southeast-1': arn('ap-southeast-1'),
            },
          },
        }),
      ).toEqual([
        expect.stringMatching(
          /^backupDns\.certificateArns\.ap-southeast-1: .*names a region that is not configured/,
        ),
      ]);
      expect(
        problemsOf({
          ...EXTERNAL,
          backupDns: {
            ...EXTERNAL.backupDns,
            certificateArns: { ...EXTERNAL.backupDns.certificateArns, 'eu-west-1': 'my-cert' },
          },
        })[0],
      ).toMatch(/^backupDns\.certificateArns\.eu-west-1: got "my-cert"; must be an ACM certificate ARN/);
    });

    it('refuses an unknown provider and fields of the other provider, naming them', () => {
      expect(problemsOf({ backupDns: { provider: 'cloudflare' } })[0]).toMatch(
        /^backupDns\.provider: got "cloudflare"; .*'route53' \| 'external'/,
      );
      expect(
        problemsOf({
          backupDns: { provider: 'route53', hostedZoneId: 'Z08987654ZYXWVUTSRQP', certificateArns: {} },
        })[0],
      ).toMatch(/^backupDns: unknown field\(s\) "certificateArns"/);
    });
  });
});
