/**
 * cdk-nag's AwsSolutions pack runs on every synth (buildStacks registers it). These tests prove the
 * project has zero unacknowledged findings, that every acknowledgement says why, and that the check
 * is live (an unacknowledged finding does fail synthesis).
 */
import { App, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { synthProject, type SynthesizedProject } from './support/synth';

let project: SynthesizedProject;

beforeAll(() => {
  // Synthesis itself throws on any unacknowledged finding; reaching the tests means it passed.
  project = synthProject();
});
afterAll(() => project.dispose());

interface Acknowledgement {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

function acknowledgements(root: IConstruct): Acknowledgement[] {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id,
          reason,
        })),
      ),
  );
}

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged in any stack', () => {
    const report = new AwsSolutionsChecks().validateScope(project.app);
    expect(
      report.violations.map((v) => `${v.ruleName} at ${v.violatingResources[0]?.constructPath}`),
    ).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('gives every acknowledgement a specific reason', () => {
    const all = acknowledgements(project.app);
    for (const ack of all) expect(ack.reason.trim()).not.toBe('');
    // aws-cdk-lib acknowledges a few CloudFormation-Validate quirks itself; the cdk-nag ones are ours.
    const nag = all.filter((ack) => /^(annotation::)?AwsSolutions-/i.test(ack.id));
    expect(nag.length).toBeGreaterThan(0);
    for (const ack of nag) {
      // A reason is a sentence about this resource, not "n/a" or "needed".
      expect(ack.reason.length).toBeGreaterThanOrEqual(60);
      expect(ack.reason).not.toMatch(/^(todo|n\/a|not needed|needed|ok)\b/i);
    }
  });

  it('has no stale acknowledgement: each one silences a finding that exists', () => {
    // The same pack with acknowledgements ignored lists every raw finding.
    const raw = new AwsSolutionsChecks();
    (raw as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
    const findings = raw
      .validateScope(project.app)
      .violations.flatMap((v) =>
        v.violatingResources.map((r) => ({ id: v.ruleName, path: r.constructPath ?? '' })),
      );
    const nag = acknowledgements(project.app).filter((ack) => /^(annotation::)?AwsSolutions-/i.test(ack.id));
    for (const ack of nag) {
      const id = ack.id.replace(/^annotation::/i, '');
      const silenced = findings.filter(
        (f) => f.id === id && (f.path === ack.path || f.path.startsWith(`${ack.path}/`)),
      );
      expect({ ack: `${id} at ${ack.path}`, silenced: silenced.length > 0 }).toEqual({
        ack: `${id} at ${ack.path}`,
        silenced: true,
      });
    }
  });

  it('acknowledges findings on the resources that have them, never on a whole stack or the app', () => {
    const stackPaths = new Set(project.app.node.children.map((c) => c.node.path));
    for (const ack of acknowledgements(project.app)) {
      expect(ack.path).not.toBe('');
      expect(stackPaths.has(ack.path)).toBe(false);
    }
  });

  it('fails synthesis on an unacknowledged finding (the check is live)', () => {
    const app = new App();
    const stack = new Stack(app, 'Probe', { env: { account: '123456789012', region: 'eu-west-1' } });
    const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, restrictDefaultSecurityGroup: false });
    const sg = new ec2.SecurityGroup(stack, 'Open', { vpc });
    sg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(22));
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-EC23/);
  });
});
