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
});
