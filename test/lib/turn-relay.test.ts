/**
 * The AWS TURN relay (lib/turn-relay.ts): the documented load balancer and security group rules it
 * rests on, asserted on a synthesized template; the template linted by cfn-lint; and the coturn config
 * and host scripts that its user data renders, run for real (coturn, python3, bash) on loopback.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Fn, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AwsSolutionsChecks } from 'cdk-nag';
import { createCdkApp } from '../../lib/app';
import { ConfigError, parseDeploymentConfig } from '../../lib/config';
import { RegionNetwork } from '../../lib/region-network';
import { TURN_TLS_PORT, TurnRelay, usableSubnetRange } from '../../lib/turn-relay';
import { turnCredential } from '../../runtime/lb/turnCredentials';
import { stunBinding } from '../../runtime/local/TurnRelay';
import {
  COTURN_CONFIG_ERRORS,
  formatRange,
  TURN_CREDENTIAL_TTL_S,
  TURN_PORT,
  TURN_USER_QUOTA,
} from '../../runtime/protocol/turnRelayPolicy';
import { TurnClient, TurnErrorResponse } from '../runtime/local/turnClient';
import { deployTimeValue, secretsManagerFullArnPattern } from './support/aws-rules';
import {
  type Json,
  resourcesOfType,
  synthProject,
  type SynthesizedProject,
  TEST_ACCOUNT,
} from './support/synth';

const REGION = 'eu-west-1';
const VPC_CIDR = '10.70.0.0/16';
const SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${TEST_ACCOUNT}:secret:app/turn-secret-Ab3dE9`;
const CERT_ARN = `arn:aws:acm:${REGION}:${TEST_ACCOUNT}:certificate/0b8c2f5e-1f0a-4a59-9d3c-2a7c1a9e5b11`;
const RTC = { min: 41000, max: 41999 };
const REPO = path.resolve(__dirname, '..', '..');

/** A region-like stack: the project's network, a media security group, the relay. */
class RelayStack extends Stack {
  readonly relay: TurnRelay;
  readonly media: ec2.SecurityGroup;
  constructor(app: App, props: { minCapacity?: number; instanceType?: string } = {}) {
    super(app, 'TurnRelayTest', { env: { account: TEST_ACCOUNT, region: REGION } });
    const network = new RegionNetwork(this, 'Network', { cidr: VPC_CIDR });
    this.media = new ec2.SecurityGroup(this, 'Media', { vpc: network.vpc, description: 'media hosts' });
    this.relay = new TurnRelay(this, 'TurnRelay', {
      vpc: network.vpc,
      imageDirectory: path.join(REPO, 'runtime', 'turn'),
      instanceType: props.instanceType ?? 'c6i.large',
      minCapacity: props.minCapacity ?? 2,
      maxCapacity: 4,
      secret: secretsmanager.Secret.fromSecretCompleteArn(this, 'Secret', SECRET_ARN),
      certificate: acm.Certificate.fromCertificateArn(this, 'Cert', CERT_ARN),
      realm: 'turn.eu-west-1.api.example.org',
      media: {
        connections: this.media,
        subnets: { subnetType: ec2.SubnetType.PUBLIC },
        rtcPortMin: RTC.min,
        rtcPortMax: RTC.max,
      },
    });
  }
  // As RegionStack: the deploying account's own AZs, no context lookup.
  override get availabilityZones(): string[] {
    return [0, 1].map((i) => Fn.select(i, Fn.getAzs()));
  }
}

let outdir: string;
let stack: RelayStack;
let raw: Record<string, Json>;
let template: Template;
let templateFile: string;

beforeAll(() => {
  outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'turn-relay-cdk-'));
  const app = createCdkApp({ outdir });
  stack = new RelayStack(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  templateFile = assembly.getStackByName(stack.stackName).templateFullPath;
  raw = JSON.parse(fs.readFileSync(templateFile, 'utf8'));
  template = Template.fromJSON(raw);
});
afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

function only(type: string, filter: (r: Json) => boolean = () => true): Json {
  const found = Object.values(resourcesOfType(raw, type)).filter(filter);
  expect(found).toHaveLength(1);
  return found[0];
}

function idOf(type: string, filter: (r: Json) => boolean): string {
  const found = Object.entries(resourcesOfType(raw, type)).filter(([, r]) => filter(r));
  expect(found).toHaveLength(1);
  return found[0]![0];
}

/** Every rule of a security group, inline and standalone, as `proto from-to peer` strings. */
function rulesOf(groupId: string, direction: 'ingress' | 'egress'): string[] {
  const group = raw.Resources[groupId];
  const peer = (r: Json) =>
    r.CidrIp ??
    r.CidrIpv6 ??
    (r.SourceSecurityGroupId ?? r.DestinationSecurityGroupId)?.['Fn::GetAtt']?.[0] ??
    JSON.stringify(r);
  const inline: Json[] =
    (direction === 'ingress'
      ? group.Properties.SecurityGroupIngress
      : group.Properties.SecurityGroupEgress) ?? [];
  const standalone = Object.values(
    resourcesOfType(
      raw,
      direction === 'ingress' ? 'AWS::EC2::SecurityGroupIngress' : 'AWS::EC2::SecurityGroupEgress',
    ),
  )
    .map((r) => r.Properties)
    .filter((p) => p.GroupId?.['Fn::GetAtt']?.[0] === groupId);
  return [...inline, ...standalone].map((r) => `${r.IpProtocol} ${r.FromPort}-${r.ToPort} ${peer(r)}`).sort();
}

/** The relay's user data, with deploy-time values shown as `<token>`. */
function userData(): string {
  const lt = only('AWS::EC2::LaunchTemplate');
  const parts: unknown[] = lt.Properties.LaunchTemplateData.UserData['Fn::Base64']['Fn::Join'][1];
  return parts.map((p) => (typeof p === 'string' ? p : '<token>')).join('');
}

/** The body of a `cat > <file> <<'EOF'` block of the user data. */
function heredoc(file: string): string[] {
  const lines = userData().split('\n');
  const start = lines.indexOf(`cat > ${file} <<'EOF'`);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = lines.indexOf('EOF', start + 1);
  return lines.slice(start + 1, end);
}

const lbSecurityGroupId = () =>
  idOf('AWS::EC2::SecurityGroup', (r) => /^TURN relay load balancer/.test(r.Properties.GroupDescription));
const hostSecurityGroupId = () =>
  idOf('AWS::EC2::SecurityGroup', (r) => /^TURN relay hosts/.test(r.Properties.GroupDescription));
const mediaSecurityGroupId = () =>
  idOf('AWS::EC2::SecurityGroup', (r) => r.Properties.GroupDescription === 'media hosts');

describe('load balancer (Elastic Load Balancing user guide, Network Load Balancers)', () => {
  it('is an internet-facing NLB in the public subnets with its own security group', () => {
    const lb = only('AWS::ElasticLoadBalancingV2::LoadBalancer');
    expect(lb.Properties).toMatchObject({ Type: 'network', Scheme: 'internet-facing' });
    // "If you create a Network Load Balancer without associating any security groups, you can't
    // associate them with the load balancer later on."
    expect(lb.Properties.SecurityGroups).toEqual([{ 'Fn::GetAtt': [lbSecurityGroupId(), 'GroupId'] }]);
    const subnets = resourcesOfType(raw, 'AWS::EC2::Subnet');
    for (const ref of lb.Properties.Subnets) {
      expect(subnets[ref.Ref].Properties.Tags).toEqual(
        expect.arrayContaining([{ Key: 'aws-cdk:subnet-type', Value: 'Public' }]),
      );
    }
  });

  it('serves UDP and TCP on 3478 with one TCP_UDP listener whose target group is TCP_UDP', () => {
    // "To support both TCP and UDP on the same port, create a TCP_UDP listener. The target groups for a
    // TCP_UDP listener must use the TCP_UDP protocol."
    const listener = only('AWS::ElasticLoadBalancingV2::Listener', (l) => l.Properties.Port === TURN_PORT);
    expect(listener.Properties.Protocol).toBe('TCP_UDP');
    const tg = raw.Resources[listener.Properties.DefaultActions[0].TargetGroupArn.Ref];
    expect(tg.Properties).toMatchObject({ Protocol: 'TCP_UDP', Port: TURN_PORT, TargetType: 'instance' });
  });

  it('terminates TLS on 443 with the ACM certificate and forwards plain TCP to coturn', () => {
    // "If the listener protocol is TLS, you must deploy at least one SSL server certificate on the
    // listener." ACM certificates cannot be exported to instances, so the NLB holds it.
    const listener = only(
      'AWS::ElasticLoadBalancingV2::Listener',
      (l) => l.Properties.Port === TURN_TLS_PORT,
    );
    expect(listener.Properties.Protocol).toBe('TLS');
    expect(listener.Properties.Certificates).toEqual([{ CertificateArn: CERT_ARN }]);
    expect(listener.Properties.SslPolicy).toMatch(/^ELBSecurityPolicy-TLS13-/);
    const tg = raw.Resources[listener.Properties.DefaultActions[0].TargetGroupArn.Ref];
    expect(tg.Properties).toMatchObject({ Protocol: 'TCP', Port: TURN_PORT, TargetType: 'instance' });
    // Nothing else listens: no plain port besides 3478.
    expect(Object.keys(resourcesOfType(raw, 'AWS::ElasticLoadBalancingV2::Listener'))).toHaveLength(2);
  });

  it('health-checks over TCP (UDP and TCP_UDP cannot be health check protocols) and keeps client addresses', () => {
    for (const tg of Object.values(resourcesOfType(raw, 'AWS::ElasticLoadBalancingV2::TargetGroup'))) {
      expect(tg.Properties.HealthCheckProtocol).toBe('TCP');
      expect(tg.Properties.HealthCheckPort ?? 'traffic-port').toBe('traffic-port');
      // Client IP preservation is on for instance targets by default, and cannot be turned off for
      // UDP and TCP_UDP: nothing here may turn it off for the TCP group either.
      expect(tg.Properties.TargetType).toBe('instance');
      const attrs: Json[] = tg.Properties.TargetGroupAttributes ?? [];
      expect(attrs.find((a) => a.Key === 'preserve_client_ip.enabled')?.Value ?? 'true').toBe('true');
    }
  });
});

describe('security groups', () => {
  it('opens UDP/TCP 3478 and TCP 443 to the world on the load balancer, and nothing else', () => {
    expect(rulesOf(lbSecurityGroupId(), 'ingress')).toEqual([
      'tcp 3478-3478 0.0.0.0/0',
      'tcp 443-443 0.0.0.0/0',
      'udp 3478-3478 0.0.0.0/0',
    ]);
  });

  it('lets the load balancer reach the hosts on 3478 only (health checks follow its outbound rules)', () => {
    // "Health checks are subject to outbound rules, but not inbound rules."
    const host = hostSecurityGroupId();
    expect(rulesOf(lbSecurityGroupId(), 'egress')).toEqual([
      `tcp 3478-3478 ${host}`,
      `udp 3478-3478 ${host}`,
    ]);
  });

  it('admits TURN to the hosts only from the load balancer security group, never from an address range', () => {
    // "Referencing the security group associated with your Network Load Balancer in the security groups
    // associated with your targets ensures that your targets accept traffic from your Network Load
    // Balancer even if you enable client IP preservation."
    const lb = lbSecurityGroupId();
    expect(rulesOf(hostSecurityGroupId(), 'ingress')).toEqual([`tcp 3478-3478 ${lb}`, `udp 3478-3478 ${lb}`]);
  });

  it('lets relayed media out to the media fleet security group on its RTC ports, and only HTTPS besides', () => {
    expect(rulesOf(hostSecurityGroupId(), 'egress')).toEqual([
      'tcp 443-443 0.0.0.0/0',
      `udp ${RTC.min}-${RTC.max} ${mediaSecurityGroupId()}`,
    ]);
    expect(rulesOf(mediaSecurityGroupId(), 'ingress')).toContain(
      `udp ${RTC.min}-${RTC.max} ${hostSecurityGroupId()}`,
    );
  });
});

describe('hosts', () => {
  it('run in private subnets, replaced on failed load balancer health checks, behind both target groups', () => {
    const asg = only('AWS::AutoScaling::AutoScalingGroup');
    expect(asg.Properties).toMatchObject({ HealthCheckType: 'ELB', MinSize: '2', MaxSize: '4' });
    expect(asg.Properties.HealthCheckGracePeriod).toBeGreaterThan(0);
    const subnets = resourcesOfType(raw, 'AWS::EC2::Subnet');
    for (const ref of asg.Properties.VPCZoneIdentifier) {
      expect(subnets[ref.Ref].Properties.Tags).toEqual(
        expect.arrayContaining([{ Key: 'aws-cdk:subnet-type', Value: 'Private' }]),
      );
    }
    const targetGroups = Object.keys(resourcesOfType(raw, 'AWS::ElasticLoadBalancingV2::TargetGroup'));
    expect(asg.Properties.TargetGroupARNs.map((r: Json) => r.Ref).sort()).toEqual(targetGroups.sort());
  });

  it('signal their boot: creation waits for every host, updates replace one host at a time', () => {
    const asg = only('AWS::AutoScaling::AutoScalingGroup');
    expect(asg.CreationPolicy.ResourceSignal).toMatchObject({ Count: 2 });
    expect(asg.UpdatePolicy.AutoScalingRollingUpdate).toMatchObject({
      MaxBatchSize: 1,
      MinInstancesInService: 2,
      WaitOnResourceSignals: true,
    });
    // The boot signals the group's own logical id, from the template's own stack.
    const groupId = idOf('AWS::AutoScaling::AutoScalingGroup', () => true);
    expect(userData()).toContain(`--logical-resource-id ${groupId} --unique-id "$instance_id" --status "$1"`);
  });

  it('launch with IMDSv2 required, one metadata hop, no public address and an encrypted disk', () => {
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        MetadataOptions: Match.objectLike({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 }),
        NetworkInterfaces: [Match.objectLike({ AssociatePublicIpAddress: false })],
        BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ Encrypted: true }) })],
        KeyName: Match.absent(),
      }),
    });
  });

  it('may read exactly the TURN secret replica and mark only their own group unhealthy', () => {
    const policies = Object.values(resourcesOfType(raw, 'AWS::IAM::Policy'));
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement as Json[]);
    const resourcesFor = (action: string) =>
      statements
        .filter((s) => [s.Action].flat().includes(action))
        .flatMap((s) => [s.Resource].flat())
        .map((r) => (typeof r === 'string' ? r : JSON.stringify(r)));
    expect(resourcesFor('secretsmanager:GetSecretValue')).toEqual([SECRET_ARN]);
    const health = resourcesFor('autoscaling:SetInstanceHealth');
    expect(health).toHaveLength(1);
    const groupId = idOf('AWS::AutoScaling::AutoScalingGroup', () => true);
    expect(health[0]).toContain(':autoScalingGroup:*:autoScalingGroupName/');
    expect(health[0]).toContain(`{"Ref":"${groupId}"}`);
  });

  it('scale out on CPU but never in by themselves (a leaving host takes its relayed calls along)', () => {
    template.hasResourceProperties('AWS::AutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingConfiguration: Match.objectLike({ DisableScaleIn: true }),
    });
  });

  it('boot an Amazon Linux 2023 AMI of the instance architecture', () => {
    const ami = (params: Record<string, Json>) =>
      Object.entries(params)
        .filter(([, p]) => String(p.Default).includes('al2023-ami'))
        .map(([, p]) => String(p.Default));
    expect(ami(raw.Parameters)).toEqual([expect.stringMatching(/x86_64$/)]);
    const arm = new RelayStack(createCdkApp(), { instanceType: 'c7g.large' });
    expect(ami(Template.fromStack(arm).toJSON().Parameters)).toEqual([expect.stringMatching(/arm64$/)]);
  });
});

describe('coturn config in the user data', () => {
  it('allows exactly the usable addresses of the media subnets (AWS reserves the first four and the last)', () => {
    const publicCidrs = Object.values(resourcesOfType(raw, 'AWS::EC2::Subnet'))
      .filter((s) =>
        s.Properties.Tags.some((t: Json) => t.Value === 'Public' && t.Key === 'aws-cdk:subnet-type'),
      )
      .map((s) => s.Properties.CidrBlock as string)
      .sort();
    expect(publicCidrs).toEqual(['10.70.0.0/18', '10.70.64.0/18']);
    const allowed = heredoc('/etc/turn-relay/turnserver.base.conf').filter((l) =>
      l.startsWith('allowed-peer-ip='),
    );
    expect(allowed).toEqual([
      'allowed-peer-ip=10.70.0.4-10.70.63.254',
      'allowed-peer-ip=10.70.64.4-10.70.127.254',
    ]);
    expect(stack.relay.allowedPeers).toEqual(publicCidrs.map((c) => formatRange(usableSubnetRange(c))));
  });

  it('denies everything else, keeps loopback refused, and runs without TLS, CLI or TCP relays', () => {
    const conf = heredoc('/etc/turn-relay/turnserver.base.conf');
    for (const line of [
      'denied-peer-ip=0.0.0.0-255.255.255.255',
      'denied-peer-ip=169.254.0.0-169.254.255.255',
      'denied-peer-ip=fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      'use-auth-secret',
      'realm=turn.eu-west-1.api.example.org',
      'no-tls',
      'no-dtls',
      'no-cli',
      'no-tcp-relay',
      'no-multicast-peers',
      `listening-port=${TURN_PORT}`,
    ]) {
      expect(conf).toContain(line);
    }
    expect(conf).not.toContain('allow-loopback-peers');
    // The secret never goes into the template; the host adds it from Secrets Manager at start.
    expect(userData()).not.toMatch(/static-auth-secret=[^'\\]/);
  });

  it('refuses at synth a media subnet range that would open link-local addresses', () => {
    const app = createCdkApp();
    const s = new Stack(app, 'Bad', { env: { account: TEST_ACCOUNT, region: REGION } });
    const vpc = new ec2.Vpc(s, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('169.254.0.0/16'),
      maxAzs: 1,
      natGateways: 0,
      restrictDefaultSecurityGroup: false,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC }],
    });
    expect(
      () =>
        new TurnRelay(s, 'TurnRelay', {
          vpc,
          imageDirectory: path.join(REPO, 'runtime', 'turn'),
          instanceType: 'c6i.large',
          minCapacity: 1,
          maxCapacity: 1,
          secret: secretsmanager.Secret.fromSecretCompleteArn(s, 'Secret', SECRET_ARN),
          certificate: acm.Certificate.fromCertificateArn(s, 'Cert', CERT_ARN),
          realm: 'turn.example.org',
          media: {
            connections: new ec2.SecurityGroup(s, 'Media', { vpc }),
            subnets: { subnetType: ec2.SubnetType.PUBLIC },
            rtcPortMin: 40000,
            rtcPortMax: 40010,
          },
        }),
    ).toThrow(/TurnRelay media subnets\[0\]: "169\.254\.0\.4-169\.254\.255\.254" overlaps 169\.254\.0\.0/);
  });
});

describe('the rendered config and host scripts, run for real', () => {
  const ADDRESS = '127.0.121.1';
  const PORT = 23478;
  const CURRENT = 'currentTurnSecret0123456789abcdefABCDEF0123456789';
  const NEXT = 'nextTurnSecret0123456789abcdefABCDEF0123456789xyz';
  let dir: string;
  let coturn: ChildProcess;
  let log = '';

  /** Runs the user data's secret step on a Secrets Manager document: coturn's lines, or the failure. */
  function secretLines(doc: unknown): { code: number; stdout: string; stderr: string } {
    const helper = path.join(dir, 'secret-lines');
    fs.writeFileSync(helper, `${heredoc('/usr/local/lib/turn-relay/secret-lines').join('\n')}\n`);
    const step = heredoc('/usr/local/sbin/turn-relay-prepare')
      .find((l) => l.startsWith('secret_lines='))!
      .replace('/usr/local/lib/turn-relay/secret-lines', helper);
    const script = `set -euo pipefail\ndoc=$1\n${step}\nprintf '%s' "$secret_lines"\n`;
    try {
      const stdout = execFileSync('bash', ['-c', script, 'prepare', JSON.stringify(doc)], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      return { code: 0, stdout, stderr: '' };
    } catch (err) {
      const e = err as { status: number; stdout: string; stderr: string };
      return { code: e.status, stdout: e.stdout, stderr: e.stderr };
    }
  }

  beforeAll(async () => {
    for (const tool of ['turnserver', 'python3', 'bash']) {
      if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
        throw new Error(`${tool} is not installed; on Debian: apt-get install coturn python3`);
      }
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turn-aws-conf-'));
    const secrets = secretLines({ kid: 'k2', secret: NEXT, verify: [{ kid: 'k1', secret: CURRENT }] });
    expect(secrets.code).toBe(0);
    // The host's config, as turn-relay-prepare assembles it, on loopback and on this test's ports.
    const base = heredoc('/etc/turn-relay/turnserver.base.conf').map((l) =>
      l === `listening-port=${TURN_PORT}` ? `listening-port=${PORT}` : /^(min|max)-port=/.test(l) ? '' : l,
    );
    const config = [
      `listening-ip=${ADDRESS}`,
      `relay-ip=${ADDRESS}`,
      ...base.filter(Boolean),
      'min-port=26300',
      'max-port=26399',
      secrets.stdout,
      `pidfile=${dir}/turnserver.pid`,
      `userdb=${dir}/turndb`,
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'turnserver.conf'), `${config}\n`, { mode: 0o600 });
    coturn = spawn('turnserver', ['-c', path.join(dir, 'turnserver.conf')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    coturn.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    coturn.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await stunBinding(ADDRESS, PORT, 300))) {
      if (Date.now() > deadline) throw new Error(`coturn did not start:\n${log}`);
    }
  }, 30_000);

  afterAll(async () => {
    if (coturn && coturn.exitCode === null) {
      const exited = new Promise((r) => coturn.once('exit', r));
      coturn.kill('SIGTERM');
      const timer = setTimeout(() => coturn.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('coturn takes every line (the boot check would fail a host that skipped one)', () => {
    expect(log.split('\n').filter((l) => COTURN_CONFIG_ERRORS.test(l))).toEqual([]);
    // The boot's check greps coturn's output with the same pattern: it does catch such a line.
    const check = userData()
      .split('\n')
      .find((l) => l.startsWith('if docker logs turn-relay'))!;
    const grep = /grep -E '([^']+)'/.exec(check)![1]!;
    expect(() =>
      execFileSync('grep', ['-E', grep], { input: '0: : Bad configuration format: denied-peer-ip\n' }),
    ).not.toThrow();
    expect(() => execFileSync('grep', ['-E', grep], { input: log })).toThrow();
  });

  it('the secret step writes every secret of the document, current first, and refuses an unusable one', () => {
    expect(secretLines({ kid: 'k1', secret: CURRENT }).stdout).toBe(`static-auth-secret=${CURRENT}`);
    expect(secretLines({ kid: 'k2', secret: NEXT, verify: [{ kid: 'k1', secret: CURRENT }] }).stdout).toBe(
      `static-auth-secret=${NEXT}\nstatic-auth-secret=${CURRENT}`,
    );
    for (const bad of ['short', `${CURRENT} no-auth`, `${CURRENT}\nno-auth`, `${CURRENT}#x`]) {
      const result = secretLines({ kid: 'k1', secret: bad });
      expect({ bad, code: result.code }).toEqual({ bad, code: 1 });
      expect(result.stderr).toMatch(/not 32-512 printable characters/);
    }
  });

  it('credentials from turnCredentials allocate with either secret of the document', async () => {
    for (const secret of [NEXT, CURRENT]) {
      const client = await TurnClient.connect({ transport: 'udp', host: ADDRESS, port: PORT });
      try {
        const { username, credential } = turnCredential(secret, `rotation-${secret.slice(0, 4)}`);
        const relayed = await client.allocate(username, credential);
        expect(relayed.address).toBe(ADDRESS);
      } finally {
        await client.close();
      }
    }
  });

  it(`holds one credential to ${TURN_USER_QUOTA} allocations at a time (user-quota)`, async () => {
    const { username, credential } = turnCredential(CURRENT, 'greedy-peer');
    const clients: TurnClient[] = [];
    try {
      for (let i = 0; i < TURN_USER_QUOTA; i++) {
        const client = await TurnClient.connect({ transport: 'udp', host: ADDRESS, port: PORT });
        clients.push(client);
        await client.allocate(username, credential);
      }
      const extra = await TurnClient.connect({ transport: 'udp', host: ADDRESS, port: PORT });
      clients.push(extra);
      const err = await extra.allocate(username, credential).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as TurnErrorResponse).code).toBe(486);
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });

  it.each([
    ['10.70.0.4', 'the first address a media host can have'],
    ['10.70.63.254', 'the last one in the first media subnet'],
    ['10.70.64.4', 'the second media subnet'],
  ])('grants a permission for %s (%s)', async (address) => {
    const client = await TurnClient.connect({ transport: 'udp', host: ADDRESS, port: PORT });
    try {
      const { username, credential } = turnCredential(CURRENT, `granted-${address}`);
      await client.allocate(username, credential);
      await expect(client.createPermission(address)).resolves.toBeUndefined();
    } finally {
      await client.close();
    }
  });

  it.each([
    ['10.70.0.1', 'the VPC router and DHCP (subnet + 1)'],
    ['10.70.0.2', 'the VPC DNS resolver (VPC + 2), which security groups do not filter'],
    ['10.70.64.2', "a subnet's reserved + 2"],
    ['10.70.0.3', 'reserved'],
    ['10.70.63.255', 'the subnet broadcast address'],
    ['10.70.128.10', 'a private subnet: relay hosts and LB tasks'],
    ['169.254.169.254', 'instance metadata'],
    ['169.254.169.253', 'Amazon DNS'],
    ['169.254.169.123', 'Amazon Time Sync'],
    ['169.254.170.2', 'ECS task metadata'],
    ['127.0.0.1', 'the relay host itself'],
    ['0.0.0.0', 'the relay host through "this network"'],
    ['8.8.8.8', 'a public host'],
  ])('refuses a permission for %s (%s)', async (address) => {
    const client = await TurnClient.connect({ transport: 'udp', host: ADDRESS, port: PORT });
    try {
      const { username, credential } = turnCredential(CURRENT, `refused-${address}`);
      await client.allocate(username, credential);
      const err = await client.createPermission(address).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TurnErrorResponse);
      expect({ address, code: (err as TurnErrorResponse).code }).toEqual({ address, code: 403 });
    } finally {
      await client.close();
    }
  });

  it('the host probe passes against the relay and fails where nothing answers', async () => {
    const probe = path.join(dir, 'turn-probe');
    fs.writeFileSync(probe, `${heredoc('/usr/local/sbin/turn-probe').join('\n')}\n`, { mode: 0o755 });
    const run = (port: number) =>
      new Promise<number>((resolve) =>
        execFile('python3', [probe, ADDRESS, String(port)], { timeout: 10_000 }, (err) =>
          resolve(err ? ((err as { code?: number }).code ?? -1) : 0),
        ),
      );
    expect(await run(PORT)).toBe(0);
    expect(await run(23999)).toBe(1);
  });
});

describe('cfn-lint', () => {
  it('finds nothing in the synthesized relay template', () => {
    // Run from the repository root, so it reads the project's .cfnlintrc.yaml as CI does.
    const result = spawnSync('cfn-lint', [templateFile], { cwd: REPO, encoding: 'utf8' });
    if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      throw new Error('cfn-lint is not installed: pip install cfn-lint==1.51.0', { cause: result.error });
    }
    expect({ status: result.status, output: `${result.stdout}${result.stderr}` }).toEqual({
      status: 0,
      output: '',
    });
  });
});

describe('validation', () => {
  const build = (overrides: Record<string, unknown>) => () => {
    const app = createCdkApp();
    const s = new Stack(app, 'V', { env: { account: TEST_ACCOUNT, region: REGION } });
    const network = new RegionNetwork(s, 'Network', { cidr: VPC_CIDR });
    new TurnRelay(s, 'TurnRelay', {
      vpc: network.vpc,
      imageDirectory: path.join(REPO, 'runtime', 'turn'),
      instanceType: 'c6i.large',
      minCapacity: 1,
      maxCapacity: 2,
      secret: secretsmanager.Secret.fromSecretCompleteArn(s, 'Secret', SECRET_ARN),
      certificate: acm.Certificate.fromCertificateArn(s, 'Cert', CERT_ARN),
      realm: 'turn.example.org',
      media: {
        connections: new ec2.SecurityGroup(s, 'Media', { vpc: network.vpc }),
        subnets: { subnetType: ec2.SubnetType.PUBLIC },
        rtcPortMin: 40000,
        rtcPortMax: 40010,
      },
      ...overrides,
    });
  };

  it.each([
    [
      { relayPortMin: 3000, relayPortMax: 4000 },
      /relay ports 3000-4000 are not a range above the listening port 3478/,
    ],
    [{ minCapacity: 0 }, /capacity 0-2 is not a range from at least 1/],
    [{ minCapacity: 3 }, /capacity 3-2/],
    [{ realm: 'turn example' }, /realm "turn example" is not a DNS name/],
  ])('refuses %j and says what to change', (overrides, message) => {
    expect(build(overrides)).toThrow(message);
  });

  it('refuses a secret imported by name (its grant could not name the replica exactly)', () => {
    const app = createCdkApp();
    const s = new Stack(app, 'V', { env: { account: TEST_ACCOUNT, region: REGION } });
    const byName = secretsmanager.Secret.fromSecretNameV2(s, 'ByName', 'app/turn-secret');
    expect(build({ secret: byName })).toThrow(/has no full ARN; import this region's replica/);
  });
});

describe('config', () => {
  it('defaults: two c6i.large hosts per region, eight-hour credentials, coturn relay ports, its own secret', () => {
    const cfg = parseDeploymentConfig({});
    expect(cfg.turn).toEqual({
      instanceType: 'c6i.large',
      minSize: 2,
      maxSize: 4,
      credentialTtlSeconds: TURN_CREDENTIAL_TTL_S,
      relayPortMin: 49152,
      relayPortMax: 65535,
    });
    expect(cfg.turnSecretName).toBe('mrwebrtc/turn-secret');
    expect(cfg.local).toMatchObject({
      turnPort: 3478,
      turnTlsPort: 5349,
      turnRelayPortMin: 50000,
      turnRelayPortMax: 50999,
    });
  });

  it.each([
    [{ turn: { credentialTtlSeconds: 60 } }, /^turn\.credentialTtlSeconds: got 60; must be at least 600 s/],
    [
      { turn: { credentialTtlSeconds: 172800 } },
      /^turn\.credentialTtlSeconds: got 172800; must be at most 86400 s/,
    ],
    [{ turn: { minSize: 5, maxSize: 2 } }, /^turn\.minSize: got 5; is larger than turn\.maxSize \(2\)/],
    [{ turn: { minSize: 0 } }, /^turn\.minSize: got 0; keep at least one relay host per region/],
    [
      { turn: { relayPortMin: 3000, relayPortMax: 4000 } },
      /^turn\.relayPortMin: got 3000; .*contains the relay's listening port/,
    ],
    [
      { local: { turnRelayPortMin: 5000, turnRelayPortMax: 6000 } },
      /^local\.turnRelayPortMin: got 5000; .*contains/,
    ],
    [{ turn: { instanceType: 'big' } }, /^turn\.instanceType: got "big"; must be an EC2 instance type/],
    [{ turn: { ttl: 1 } }, /^turn: unknown field\(s\) "ttl"/],
  ])('refuses %j naming the field', (input, message) => {
    try {
      parseDeploymentConfig(input);
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems[0]).toMatch(message);
    }
  });
});

describe('in the region stack', () => {
  let project: SynthesizedProject;
  let region: Record<string, Json>;
  beforeAll(() => {
    project = synthProject({
      tableOwnerRegion: 'eu-west-1',
      regions: ['us-east-1', 'eu-west-1'],
      domain: 'rtc.example.org',
      hostedZoneId: 'Z1111111111111PRIMARY',
      backupDomain: 'rtc-fallback.example.com',
      backupHostedZoneId: 'Z2222222222222BACKUP',
    });
    region = project.template('mrwebrtc-eu-west-1');
  }, 120_000);
  afterAll(() => project.dispose());

  it('names the relay in both families, each record in its own zone, aliasing the relay load balancer', () => {
    const lbId = Object.entries(resourcesOfType(region, 'AWS::ElasticLoadBalancingV2::LoadBalancer')).find(
      ([, r]) => r.Properties.Type === 'network',
    )![0];
    const records = Object.values(resourcesOfType(region, 'AWS::Route53::RecordSet')).filter((r) =>
      String(r.Properties.Name).startsWith('turn.'),
    );
    expect(
      records.map((r) => [r.Properties.Name, r.Properties.HostedZoneId, r.Properties.Type]).sort(),
    ).toEqual([
      ['turn.eu-west-1.api-backup.rtc-fallback.example.com.', 'Z2222222222222BACKUP', 'A'],
      ['turn.eu-west-1.api.rtc.example.org.', 'Z1111111111111PRIMARY', 'A'],
    ]);
    for (const record of records) {
      expect(JSON.stringify(record.Properties.AliasTarget.DNSName)).toContain(lbId);
      // A plain name: no routing policy that another region's record would have to complete.
      for (const routing of ['Region', 'Weight', 'SetIdentifier', 'Failover']) {
        expect(record.Properties).not.toHaveProperty(routing);
      }
    }
  });

  it('validates its certificate for both names, each in the zone that holds it, and puts it on the TLS listener', () => {
    const cert = Object.entries(resourcesOfType(region, 'AWS::CertificateManager::Certificate')).find(
      ([, c]) => c.Properties.DomainName === 'turn.eu-west-1.api.rtc.example.org',
    )!;
    expect(cert[1].Properties.SubjectAlternativeNames).toEqual([
      'turn.eu-west-1.api-backup.rtc-fallback.example.com',
    ]);
    expect(cert[1].Properties.DomainValidationOptions).toEqual(
      expect.arrayContaining([
        { DomainName: 'turn.eu-west-1.api.rtc.example.org', HostedZoneId: 'Z1111111111111PRIMARY' },
        {
          DomainName: 'turn.eu-west-1.api-backup.rtc-fallback.example.com',
          HostedZoneId: 'Z2222222222222BACKUP',
        },
      ]),
    );
    const tls = Object.values(resourcesOfType(region, 'AWS::ElasticLoadBalancingV2::Listener')).find(
      (l) => l.Properties.Protocol === 'TLS',
    );
    expect(tls.Properties.Certificates).toEqual([{ CertificateArn: { Ref: cert[0] } }]);
  });

  it('reads the TURN secret replica of its own region, found by name, and nothing else of Secrets Manager', () => {
    const lookup = Object.values(region.Resources as Record<string, Json>).find(
      (r) =>
        String(r.Type).startsWith('Custom::') &&
        JSON.parse(r.Properties.Create).parameters.SecretId === 'mrwebrtc/turn-secret',
    );
    expect(JSON.parse(lookup.Properties.Create)).toMatchObject({
      action: 'DescribeSecret',
      region: 'eu-west-1',
    });
    const roleId = Object.entries(resourcesOfType(region, 'AWS::IAM::Role')).find(([id]) =>
      id.startsWith('TurnRelayInstanceRole'),
    )![0];
    const readable = Object.values(resourcesOfType(region, 'AWS::IAM::Policy'))
      .filter((p) => p.Properties.Roles.some((r: Json) => r.Ref === roleId))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Json[])
      .filter((st) => [st.Action].flat().includes('secretsmanager:GetSecretValue'))
      .flatMap((st) => [st.Resource].flat())
      .map((r) => deployTimeValue(region, r, TEST_ACCOUNT));
    expect(readable).toHaveLength(1);
    expect(readable[0]).toMatch(secretsManagerFullArnPattern('eu-west-1', TEST_ACCOUNT));
    expect(readable[0]).toContain(':secret:mrwebrtc/turn-secret-');
    expect(heredocOf(region, '/etc/turn-relay/host.env')).toContain('TURN_SECRET_ARN=<token>');
  });

  it('outputs where clients reach the relay', () => {
    expect(region.Outputs.TurnHost.Value).toBe('turn.eu-west-1.api.rtc.example.org');
    expect(region.Outputs.TurnBackupHost.Value).toBe('turn.eu-west-1.api-backup.rtc-fallback.example.com');
    expect(region.Outputs.TurnTlsPort.Value).toBe(String(TURN_TLS_PORT));
  });

  it('has the table stack create the secret, generated, replicated to every other region and retained', () => {
    const table = project.template('mrwebrtc-table');
    const secret = Object.values(resourcesOfType(table, 'AWS::SecretsManager::Secret')).find(
      (s) => s.Properties.Name === 'mrwebrtc/turn-secret',
    );
    expect(secret.Properties.SecretString).toBeUndefined();
    expect(secret.Properties.GenerateSecretString).toMatchObject({
      GenerateStringKey: 'secret',
      ExcludePunctuation: true,
    });
    expect(secret.Properties.GenerateSecretString.PasswordLength).toBeGreaterThanOrEqual(32);
    expect(secret.Properties.ReplicaRegions).toEqual([{ Region: 'us-east-1' }]);
    expect(secret.DeletionPolicy).toBe('Retain');
  });
});

function heredocOf(template: Record<string, Json>, file: string): string[] {
  const lt = Object.values(resourcesOfType(template, 'AWS::EC2::LaunchTemplate')).find((l) =>
    JSON.stringify(l.Properties.LaunchTemplateData.UserData).includes(file),
  );
  const parts: unknown[] = lt.Properties.LaunchTemplateData.UserData['Fn::Base64']['Fn::Join'][1];
  const lines = parts
    .map((p) => (typeof p === 'string' ? p : '<token>'))
    .join('')
    .split('\n');
  const start = lines.indexOf(`cat > ${file} <<'EOF'`);
  return lines.slice(start + 1, lines.indexOf('EOF', start + 1));
}
