import { parseDeploymentConfig } from '../../lib/config';
import { placeholderFindings, PLACEHOLDER_ZONE_IDS } from '../../lib/placeholders';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

const REAL = {
  domain: 'calls.acme-rtc.com',
  hostedZoneId: 'Z07123456ABCDEFGHIJK',
  backupDomain: 'acme-rtc-fallback.net',
  backupHostedZoneId: 'Z08987654ZYXWVUTSRQP',
};

describe('placeholder values', () => {
  it('finds nothing in a real config and account', () => {
    expect(placeholderFindings(parseDeploymentConfig(REAL), '210987654321')).toEqual([]);
  });

  it("finds every placeholder of cdk.json's defaults, naming the field and the fix", () => {
    const findings = placeholderFindings(parseDeploymentConfig({}), '111111111111');
    expect(findings.map((f) => f.split(':')[0])).toEqual([
      'domain',
      'backupDomain',
      'hostedZoneId',
      'backupHostedZoneId',
      'account',
    ]);
    expect(findings[0]).toBe(
      'domain: "example.com" is a documentation name (RFC 2606/6761), not yours; set the domain of your primary zone',
    );
  });

  it('covers names under the reserved domains, and origins and addresses too', () => {
    const findings = placeholderFindings(
      parseDeploymentConfig({
        ...REAL,
        domain: 'rtc.example.org',
        corsOrigins: ['https://meet.example.com'],
        monitoring: { alarmEmails: ['ops@example.net'] },
      }),
      '123456789012',
    );
    expect(findings.map((f) => f.split(':')[0])).toEqual([
      'domain',
      'corsOrigins[0]',
      'monitoring.alarmEmails[0]',
      'account',
    ]);
  });

  it('knows the zone ids the docs show', () => {
    const deployDoc = readFileSync(path.join(__dirname, '../../docs/DEPLOY.md'), 'utf8');
    const cdkJson = readFileSync(path.join(__dirname, '../../cdk.json'), 'utf8');
    const shown = [...`${deployDoc}\n${cdkJson}`.matchAll(/"(Z0[0-9A-Z]+)"/g)].map((m) => m[1]!);
    expect(shown.length).toBeGreaterThan(0);
    for (const id of shown) expect(PLACEHOLDER_ZONE_IDS).toContain(id);
  });

  it('names the field the backup zone id came from: the shorthand or backupDns', () => {
    const { backupHostedZoneId: _shorthand, ...rest } = REAL;
    const findings = placeholderFindings(
      parseDeploymentConfig({
        ...rest,
        backupDns: { provider: 'route53', hostedZoneId: 'Z0123456789BACKUP' },
      }),
      '210987654321',
    );
    expect(findings).toEqual([
      expect.stringMatching(
        /^backupDns\.hostedZoneId: "Z0123456789BACKUP" is the example zone id from the docs/,
      ),
    ]);
  });

  it('finds a backup certificate in a documentation account, and no zone id for an external provider', () => {
    const { backupHostedZoneId: _shorthand, ...rest } = REAL;
    const cert = (region: string, account: string) =>
      `arn:aws:acm:${region}:${account}:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d`;
    const config = (account: string) =>
      parseDeploymentConfig({
        ...rest,
        regions: ['eu-west-1'],
        backupDns: {
          provider: 'external',
          certificateArns: { 'eu-west-1': cert('eu-west-1', account) },
          turnCertificateArns: { 'eu-west-1': cert('eu-west-1', account) },
        },
      });
    expect(placeholderFindings(config('210987654321'), '210987654321')).toEqual([]);
    const findings = placeholderFindings(config('123456789012'), '210987654321');
    expect(findings.map((f) => f.split(':')[0])).toEqual([
      'backupDns.certificateArns',
      'backupDns.turnCertificateArns',
    ]);
    expect(findings[0]).toMatch(
      /^backupDns\.certificateArns: eu-west-1 is "arn:aws:acm:eu-west-1:123456789012:[^"]+", in a placeholder account \(123456789012\); set the ARN of the certificate you imported into ACM in eu-west-1/,
    );
  });
});
