/**
 * A backup zone at another DNS provider (`backupDns.provider: "external"`): the region stacks leave the
 * backup names out of Route 53 altogether (no record, no health check, no certificate validation there),
 * serve them with a certificate imported into ACM in their own region, and output the records the
 * operator creates at that provider. The primary family is as with a Route 53 backup zone
 * (test/lib/region-stack.test.ts).
 */
import { parseAwsDeploymentConfig } from '../../lib/config';
import { EXTERNAL_BACKUP_TTL_SECONDS, externalBackupRecords } from '../../lib/names';
import { AWS_REGIONS } from '../../runtime/protocol/regions';
import {
  frozenSourceCopy,
  type Json,
  resourcesOfType,
  synthProject,
  type SynthesizedProject,
  TEST_ACCOUNT,
} from './support/synth';

const PRIMARY_DOMAIN = 'rtc.example.org';
const PRIMARY_ZONE = 'Z1111111111111PRIMARY';
const BACKUP_DOMAIN = 'rtc-fallback.example.com';

const cert = (region: string, id: string) =>
  `arn:aws:acm:${region}:${TEST_ACCOUNT}:certificate/${id}-4e5f-4a6b-8c7d-9e0f1a2b3c4d`;
const US_CERT = cert('us-east-1', 'aaaaaaaa');
const EU_CERT = cert('eu-west-1', 'bbbbbbbb');
const EU_TURN_CERT = cert('eu-west-1', 'cccccccc');

const CONFIG = {
  tableOwnerRegion: 'eu-west-1' as const,
  domain: PRIMARY_DOMAIN,
  hostedZoneId: PRIMARY_ZONE,
  backupDomain: BACKUP_DOMAIN,
  backupDns: {
    provider: 'external' as const,
    certificateArns: { 'us-east-1': US_CERT, 'eu-west-1': EU_CERT },
    // eu-west-1's relay has a certificate of its own; us-east-1's uses the API one.
    turnCertificateArns: { 'eu-west-1': EU_TURN_CERT },
  },
  regions: ['us-east-1', 'eu-west-1'],
  healthCheck: { requestIntervalSeconds: 30, failureThreshold: 5 },
};

let source: ReturnType<typeof frozenSourceCopy>;
let project: SynthesizedProject;
let euOnly: SynthesizedProject;
const template = (region: string): Record<string, Json> => project.template(`mrwebrtc-${region}`);

beforeAll(() => {
  source = frozenSourceCopy();
  const options = { sourceDirectory: source.directory };
  project = synthProject(CONFIG, options);
  euOnly = synthProject(
    {
      ...CONFIG,
      regions: ['eu-west-1'],
      backupDns: { ...CONFIG.backupDns, certificateArns: { 'eu-west-1': EU_CERT } },
    },
    options,
  );
}, 240_000);
afterAll(() => {
  project.dispose();
  euOnly.dispose();
  source.dispose();
});

function underDomain(name: string, domain: string): boolean {
  const n = String(name).replace(/\.$/, '');
  return n === domain || n.endsWith(`.${domain}`);
}

/** A CloudFormation value as text: `Fn::Join` joined, `Fn::GetAtt` as `<logical id>.<attribute>`. */
function render(value: Json): string {
  if (typeof value === 'string') return value;
  if (value['Fn::Join']) {
    const [separator, parts] = value['Fn::Join'];
    return (parts as Json[]).map(render).join(separator);
  }
  if (value['Fn::GetAtt']) return value['Fn::GetAtt'].join('.');
  if (value.Ref) return `ref:${value.Ref}`;
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

function loadBalancerId(t: Record<string, Json>, type: 'application' | 'network'): string {
  return Object.entries(resourcesOfType(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer')).find(
    ([, lb]) => lb.Properties.Type === type,
  )![0];
}

function listenerId(t: Record<string, Json>, protocol: 'HTTPS' | 'TLS'): string {
  return Object.entries(resourcesOfType(t, 'AWS::ElasticLoadBalancingV2::Listener')).find(
    ([, l]) => l.Properties.Protocol === protocol,
  )![0];
}

/** Certificate ARNs a listener's certificate list adds to its default one. */
function listenerCertificateArns(t: Record<string, Json>, listener: string): Json[] {
  return Object.values(resourcesOfType(t, 'AWS::ElasticLoadBalancingV2::ListenerCertificate'))
    .filter((lc) => lc.Properties.ListenerArn.Ref === listener)
    .flatMap((lc) => lc.Properties.Certificates.map((c: Json) => c.CertificateArn));
}

describe.each(['us-east-1', 'eu-west-1'])(
  '%s region stack with the backup zone at another provider',
  (region) => {
    const backupRegionName = `${region}.api-backup.${BACKUP_DOMAIN}`;
    const backupCert = region === 'eu-west-1' ? EU_CERT : US_CERT;
    const turnBackupCert = region === 'eu-west-1' ? EU_TURN_CERT : US_CERT;

    it('writes nothing to Route 53 for the backup names: no record, no health check', () => {
      const t = template(region);
      const records = Object.values(resourcesOfType(t, 'AWS::Route53::RecordSet'));
      expect(records.map((r) => r.Properties.Name).sort()).toEqual(
        [
          `api.${PRIMARY_DOMAIN}.`,
          `${region}.api.${PRIMARY_DOMAIN}.`,
          `turn.${region}.api.${PRIMARY_DOMAIN}.`,
        ].sort(),
      );
      for (const record of records) expect(record.Properties.HostedZoneId).toBe(PRIMARY_ZONE);
      const checks = Object.values(resourcesOfType(t, 'AWS::Route53::HealthCheck'));
      expect(checks.map((c) => c.Properties.HealthCheckConfig.FullyQualifiedDomainName)).toEqual([
        `${region}.api.${PRIMARY_DOMAIN}`,
      ]);
      // Nothing else of Route 53 names the backup domain either (no zone lookup, no validation record).
      for (const [id, resource] of Object.entries(t.Resources as Record<string, Json>)) {
        if (String(resource.Type).startsWith('AWS::Route53::')) {
          expect([id, JSON.stringify(resource)]).toEqual([id, expect.not.stringContaining(BACKUP_DOMAIN)]);
        }
      }
    });

    it('validates through Route 53 only the primary names, in the primary zone', () => {
      const certs = Object.values(resourcesOfType(template(region), 'AWS::CertificateManager::Certificate'));
      expect(certs.map((c) => c.Properties.DomainName).sort()).toEqual(
        [`${region}.api.${PRIMARY_DOMAIN}`, `turn.${region}.api.${PRIMARY_DOMAIN}`].sort(),
      );
      for (const c of certs) {
        expect(c.Properties.ValidationMethod).toBe('DNS');
        const names = [c.Properties.DomainName, ...(c.Properties.SubjectAlternativeNames ?? [])];
        for (const name of names) expect(underDomain(name, PRIMARY_DOMAIN)).toBe(true);
        for (const option of c.Properties.DomainValidationOptions) {
          expect(option.HostedZoneId).toBe(PRIMARY_ZONE);
        }
      }
    });

    it('serves the backup names on the ALB with the imported certificate of its own region, picked by SNI', () => {
      const t = template(region);
      const https = listenerId(t, 'HTTPS');
      const listener = t.Resources[https];
      // The default certificate stays the DNS-validated primary one; the imported one joins the
      // listener's certificate list (a ListenerCertificate), where the ALB chooses it by SNI.
      expect(listener.Properties.Certificates).toEqual([
        { CertificateArn: { Ref: expect.stringMatching(/^ApiCertificate/) } },
      ]);
      expect(listenerCertificateArns(t, https)).toEqual([backupCert]);
      // ACM certificates are regional: an ELB uses one imported in its own region (ACM user guide,
      // "Supported Regions"). The ARN's fourth field is that region.
      expect(backupCert.split(':')[3]).toBe(region);
    });

    it("serves the relay's backup name on the TURN TLS listener with its imported certificate of its own region", () => {
      const t = template(region);
      const tls = listenerId(t, 'TLS');
      expect(t.Resources[tls].Properties.Certificates).toEqual([
        { CertificateArn: { Ref: expect.stringMatching(/^TurnCertificate/) } },
      ]);
      expect(listenerCertificateArns(t, tls)).toEqual([turnBackupCert]);
      expect(turnBackupCert.split(':')[3]).toBe(region);
    });

    it('outputs each record to create at the other provider, pointing at its load balancer', () => {
      const t = template(region);
      const outputs = t.Outputs as Record<string, Json>;
      const alb = `${loadBalancerId(t, 'application')}.DNSName`;
      const nlb = `${loadBalancerId(t, 'network')}.DNSName`;
      const expected = {
        ExternalBackupRegionRecord: `${backupRegionName} CNAME ${alb}`,
        ExternalBackupApiRecord: `api-backup.${BACKUP_DOMAIN} CNAME ${alb}`,
        ExternalBackupTurnRecord: `turn.${backupRegionName} CNAME ${nlb}`,
      };
      for (const [key, line] of Object.entries(expected)) expect(render(outputs[key].Value)).toBe(line);
      // The same records the client config generator prints (lib/names.ts).
      expect(
        externalBackupRecords(project.config, region)
          .map((r) => r.output)
          .sort(),
      ).toEqual(Object.keys(expected).sort());
      expect(outputs.ExternalBackupApiRecord.Description).toContain(
        `HTTPS GET https://${backupRegionName}/health with SNI, healthy on 200, every 30 s, unhealthy after 5 failures`,
      );
      expect(outputs.ExternalBackupApiRecord.Description).toContain(`TTL ${EXTERNAL_BACKUP_TTL_SECONDS} s`);
      expect(outputs.ExternalBackupApiRecord.Description).toContain(`(id ${region})`);
      // No Route 53 health check of the backup family, so no output for one; the primary one stays.
      expect(outputs.BackupHealthCheckId).toBeUndefined();
      expect(outputs.HealthCheckId).toBeDefined();
      expect(render(outputs.BackupRegionApiUrl.Value)).toBe(`https://${backupRegionName}`);
    });

    it('names no other region: not its name, not its certificate', () => {
      const text = project.templateText(`mrwebrtc-${region}`);
      for (const other of AWS_REGIONS.filter((r) => r !== region)) expect(text).not.toContain(other);
      for (const arn of [US_CERT, EU_CERT, EU_TURN_CERT].filter((a) => a.split(':')[3] !== region)) {
        expect(text).not.toContain(arn);
      }
    });
  },
);

it('leaves a region template byte-identical when another region and its certificate leave the config', () => {
  expect(euOnly.templateText('mrwebrtc-eu-west-1')).toBe(project.templateText('mrwebrtc-eu-west-1'));
});

it('reads the config the tests synthesize: an external provider with certificates per region', () => {
  expect(parseAwsDeploymentConfig(CONFIG).backupDns).toEqual({
    provider: 'external',
    certificateArns: { 'us-east-1': US_CERT, 'eu-west-1': EU_CERT },
    turnCertificateArns: { 'eu-west-1': EU_TURN_CERT },
  });
});
