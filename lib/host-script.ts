/**
 * Pieces of the first-boot scripts that the media hosts and the TURN relay hosts share (Amazon Linux
 * 2023, one container per host under systemd, IMDSv2 only, logs to CloudWatch): the boot signal to
 * CloudFormation, Docker, the shared shell library, the image pull, the container's log options, the
 * health watcher's replace loop, the boot's wait for a first healthy answer and systemd units.
 *
 * Each function returns script lines; the host scripts put them together in order.
 */

/** Where a boot reports success or failure: this stack and the Auto Scaling group's logical id. */
export interface BootSignalTarget {
  readonly stackName: string;
  readonly logicalResourceId: string;
}

/**
 * The script's opening: strict mode, `boot_signal SUCCESS|FAILURE` (a CloudFormation SignalResource, or a
 * log line for a group without a creation policy, which must not be signalled), a trap that signals
 * FAILURE when the script exits before it signalled, and Docker.
 */
export function bootPreamble(region: string, bootSignal: BootSignalTarget | undefined): string[] {
  return [
    'set -euo pipefail',
    // Until the boot has signalled, any failure (a non-zero status under set -e) signals FAILURE on exit.
    'boot_signalled=false',
    'boot_signal() {',
    ...(bootSignal
      ? [
          '  local token instance_id',
          "  token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60') || return 1",
          '  instance_id=$(curl -fsS -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/instance-id) || return 1',
          `  aws cloudformation signal-resource --region ${region} --stack-name ${bootSignal.stackName} \\`,
          `    --logical-resource-id ${bootSignal.logicalResourceId} --unique-id "$instance_id" --status "$1"`,
        ]
      : ['  echo "boot: $1 (no CloudFormation signal for this group)"']),
    '  boot_signalled=true',
    '}',
    'trap \'rc=$?; if [ "$boot_signalled" = false ]; then echo "boot failed (exit $rc)" >&2; boot_signal FAILURE || true; fi\' EXIT',
    '',
    'dnf install -y docker',
    'systemctl enable --now docker',
    '',
  ];
}

/**
 * `<libDir>/common.sh`, sourced by every host script: exports the given env files and defines `imds
 * <path>`, a metadata read with a fresh IMDSv2 session token each time.
 */
export function commonLibrary(libDir: string, envFiles: readonly string[]): string[] {
  return [
    `cat > ${libDir}/common.sh <<'EOF'`,
    `set -a; ${envFiles.map((f) => `. ${f};`).join(' ')} set +a`,
    '# IMDSv2 only: every read takes a fresh session token.',
    'imds() {',
    '  local token',
    "  token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')",
    '  curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/$1"',
    '}',
    'EOF',
  ];
}

/** Pulls `$IMAGE_URI` from this region's ECR (the registry is the URI's host part). */
export const PULL_IMAGE = [
  'aws ecr get-login-password --region "$REGION" | docker login --username AWS --password-stdin "${IMAGE_URI%%/*}"',
  'docker pull "$IMAGE_URI"',
];

/** `docker run` options sending the container's output to `$LOG_GROUP`, one stream per instance. */
export const CONTAINER_LOG_OPTIONS = [
  '  --log-driver awslogs --log-opt awslogs-region="$REGION" --log-opt awslogs-group="$LOG_GROUP" \\',
  '  --log-opt awslogs-stream="$instance_id" \\',
];

export interface ReplaceLoopProps {
  /** A shell condition that is true while the service is healthy. */
  readonly probe: string;
  readonly pollSeconds: number;
  readonly failuresBeforeReplace: number;
  /** What the log line calls the service, e.g. "media server". */
  readonly what: string;
}

/**
 * The health watcher's loop: probes every `pollSeconds`; after `failuresBeforeReplace` failures in a row
 * on a host that is in service (a host Auto Scaling is taking out stops its service on purpose), marks
 * the instance unhealthy so Auto Scaling replaces it.
 */
export function replaceWhenUnhealthy(p: ReplaceLoopProps): string[] {
  return [
    'failures=0',
    `while sleep ${p.pollSeconds}; do`,
    `  if ${p.probe}; then failures=0; continue; fi`,
    '  failures=$((failures + 1))',
    `  [ "$failures" -ge ${p.failuresBeforeReplace} ] || continue`,
    '  # A host that Auto Scaling is taking out stops its service on purpose (the drain): leave it be.',
    '  [ "$(imds meta-data/autoscaling/target-lifecycle-state 2>/dev/null)" = InService ] || continue',
    `  echo "${p.what} unhealthy for $((failures * ${p.pollSeconds})) s; asking Auto Scaling to replace this host"`,
    '  aws autoscaling set-instance-health --region "$REGION" --instance-id "$(imds meta-data/instance-id)" \\',
    '    --health-status Unhealthy && exit 0',
    'done',
  ];
}

/** The boot's wait for the service's first healthy answer; exits 1 (so signals FAILURE) at the deadline. */
export function waitUntilHealthy(probe: string, timeoutSeconds: number, failure: string): string[] {
  return [
    `deadline=$((SECONDS + ${timeoutSeconds}))`,
    `until ${probe}; do`,
    '  if [ "$SECONDS" -ge "$deadline" ]; then',
    `    echo "${failure} within ${timeoutSeconds} s" >&2`,
    '    exit 1',
    '  fi',
    '  sleep 5',
    'done',
  ];
}

/** A systemd unit enabled for multi-user.target, written to /etc/systemd/system/<name>. */
export function systemdUnit(name: string, unit: readonly string[], service: readonly string[]): string[] {
  return [
    `cat > /etc/systemd/system/${name} <<'EOF'`,
    '[Unit]',
    ...unit,
    '[Service]',
    ...service,
    '[Install]',
    'WantedBy=multi-user.target',
    'EOF',
  ];
}

/** A watcher unit: runs `execStart` after `after`, restarted when it fails. */
export function watcherUnit(name: string, description: string, after: string, execStart: string): string[] {
  return systemdUnit(
    name,
    [`Description=${description}`, `After=${after}`],
    [`ExecStart=${execStart}`, 'Restart=on-failure', 'RestartSec=10'],
  );
}

/** The unit of a host's container service: prepare, run, stop with a grace period, always restarted. */
export function containerUnit(
  name: string,
  p: { description: string; prepare: string; run: string; stop: string; stopSeconds: number },
): string[] {
  return systemdUnit(
    name,
    [
      `Description=${p.description}`,
      'Requires=docker.service',
      'After=docker.service network-online.target',
      'Wants=network-online.target',
    ],
    [
      `ExecStartPre=${p.prepare}`,
      `ExecStart=${p.run}`,
      `ExecStop=/usr/bin/docker stop --time ${p.stopSeconds} ${p.stop}`,
      'TimeoutStartSec=600',
      `TimeoutStopSec=${p.stopSeconds + 30}`,
      'Restart=always',
      'RestartSec=5',
    ],
  );
}
