/**
 * Values that only ever appear in documentation: the example zones, domains and accounts of this
 * project's docs and of AWS's. A deployment with any of them cannot work (the zones do not exist, the
 * domains cannot be validated), and it would fail only after the VPC, NAT gateways and ALB are up, so
 * `bin/app.ts` refuses them before it builds anything. Offline review (`npm run synth`) may still use
 * them; such templates carry a rule that makes CloudFormation refuse them (lib/app.ts).
 */
import type { DeploymentConfig } from './config';

/** Context key that lets a synth use placeholder values: `npm run synth` passes `-c allowPlaceholders=true`. */
export const ALLOW_PLACEHOLDERS_CONTEXT_KEY = 'allowPlaceholders';

/** Hosted zone ids of cdk.json's defaults and of docs/DEPLOY.md's example. */
export const PLACEHOLDER_ZONE_IDS: readonly string[] = [
  'Z0000000000000EXAMPLE',
  'Z0000000000000BACKUP',
  'Z0123456789PRIMARY',
  'Z0123456789BACKUP',
];

/**
 * Accounts that are not anyone's: the offline synth's default (lib/app.ts PLACEHOLDER_ACCOUNT), AWS's
 * documentation account, and the all-zero one.
 */
export const PLACEHOLDER_ACCOUNTS: readonly string[] = ['111111111111', '123456789012', '000000000000'];

/**
 * Names reserved for documentation and testing (RFC 2606, RFC 6761): a name equal to one of these or
 * under one of them can never be a real zone of yours.
 */
const RESERVED_NAMES = [
  'example.com',
  'example.net',
  'example.org',
  'example',
  'test',
  'invalid',
  'localhost',
];

function isReservedName(name: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  return RESERVED_NAMES.some((reserved) => n === reserved || n.endsWith(`.${reserved}`));
}

/**
 * Every placeholder value in `config` and `account`, each as `field: "value" ...; what to do`. Empty
 * when the deployment is real.
 */
export function placeholderFindings(config: DeploymentConfig, account: string): string[] {
  const findings: string[] = [];
  const reserved = (field: string, value: string, fix: string) =>
    findings.push(`${field}: "${value}" is a documentation name (RFC 2606/6761), not yours; ${fix}`);
  if (isReservedName(config.domain)) reserved('domain', config.domain, 'set the domain of your primary zone');
  if (isReservedName(config.backupDomain)) {
    reserved('backupDomain', config.backupDomain, 'set the domain of your backup zone');
  }
  const zoneIds: [string, string][] = [['hostedZoneId', config.hostedZoneId]];
  if (config.backupDns.provider === 'route53') {
    zoneIds.push([config.backupDns.hostedZoneIdField, config.backupDns.hostedZoneId]);
  }
  for (const [field, value] of zoneIds) {
    if (PLACEHOLDER_ZONE_IDS.includes(value)) {
      findings.push(
        `${field}: "${value}" is the example zone id from the docs; set the id of your zone ` +
          '(aws route53 list-hosted-zones-by-name --dns-name <domain>)',
      );
    }
  }
  config.corsOrigins.forEach((origin, i) => {
    if (isReservedName(new URL(origin).hostname)) {
      reserved(`corsOrigins[${i}]`, origin, 'list the origins of your own web app, or none');
    }
  });
  config.monitoring.alarmEmails.forEach((email, i) => {
    if (isReservedName(email.split('@')[1] ?? '')) {
      reserved(`monitoring.alarmEmails[${i}]`, email, 'list addresses that reach your operators');
    }
  });
  if (config.backupDns.provider === 'external') {
    for (const field of ['certificateArns', 'turnCertificateArns'] as const) {
      for (const [region, arn] of Object.entries(config.backupDns[field])) {
        const arnAccount = arn.split(':')[4] ?? '';
        if (PLACEHOLDER_ACCOUNTS.includes(arnAccount)) {
          // The field without the region: the templates' refusal rule lists the fields, and a region
          // template must not name other regions.
          findings.push(
            `backupDns.${field}: ${region} is "${arn}", in a placeholder account (${arnAccount}); set the ` +
              `ARN of the certificate you imported into ACM in ${region} (aws acm list-certificates --region ${region})`,
          );
        }
      }
    }
  }
  if (PLACEHOLDER_ACCOUNTS.includes(account)) {
    findings.push(
      `account: "${account}" is a placeholder account; deploy with credentials for your account ` +
        '(aws sts get-caller-identity) or pass -c account=<your 12-digit account id>',
    );
  }
  return findings;
}
