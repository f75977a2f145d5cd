/**
 * First-boot script of a media host (Amazon Linux 2023). The host runs the media server image from
 * this region's CDK asset repository with host networking (mediasoup binds the public RTC port range
 * directly) and three systemd units:
 *
 *   media-server.service        before each start (media-server-prepare) reads this region's replica of
 *                               the media-token key set and pulls the image, and fails if either fails;
 *                               then runs the container, restarted if it dies. Stopping it sends SIGTERM,
 *                               on which the server marks itself draining and exits once its rooms are
 *                               empty or DRAIN_TIMEOUT_MS has passed.
 *   media-drain-watch.service   polls the Auto Scaling target lifecycle state in the instance metadata;
 *                               when the instance is being terminated it stops media-server (the drain)
 *                               and then completes the termination lifecycle action.
 *   media-health-watch.service  polls the server's GET /health on the signaling port; when it has failed
 *                               for HEALTH_FAILURES_BEFORE_REPLACE polls in a row on a host that is in
 *                               service, marks the instance unhealthy so Auto Scaling replaces it.
 *
 * The boot itself reports to CloudFormation (SignalResource) on create and on every rolling update:
 * success only once the media server answers /health, failure as soon as any step fails (Docker
 * install, key read, image pull, the server never answering). So a host that cannot serve fails the
 * deploy instead of counting as launched.
 *
 * Values may be CDK tokens (image URI, log group name, secret ARN); CloudFormation fills them in before
 * cloud-init runs the script. Nothing here names another region.
 */

import type { LogLevel } from '../runtime/protocol/environment';
import {
  type BootSignalTarget,
  CONTAINER_LOG_OPTIONS,
  PULL_IMAGE,
  bootPreamble,
  commonLibrary,
  containerUnit,
  replaceWhenUnhealthy,
  waitUntilHealthy,
  watcherUnit,
} from './host-script';
import { MEDIA_INSTANCE_VARIABLES, mediaEnvironment } from '../runtime/protocol/mediaEnvironment';

export interface MediaHostScriptProps {
  readonly region: string;
  readonly tableName: string;
  /** Full ARN of this region's replica of the media-token key set (the only secret a host reads). */
  readonly mediaTokenKeysSecretArn: string;
  /** Full image URI (registry/repository:tag) in this region's ECR. */
  readonly imageUri: string;
  readonly logGroupName: string;
  readonly lifecycleHookName: string;
  readonly signalingPort: number;
  readonly rtcMinPort: number;
  readonly rtcMaxPort: number;
  readonly drainTimeoutSeconds: number;
  readonly logLevel: LogLevel;
  /**
   * Where the boot reports success or failure: this stack and the Auto Scaling group's logical id.
   * @default - no boot signal (a group without a creation policy must not be signalled)
   */
  readonly bootSignal?: BootSignalTarget;
  /** How long the boot waits for the media server's first healthy answer before it reports failure. */
  readonly bootHealthTimeoutSeconds: number;
}

/** `docker stop` waits this much beyond the server's own drain timeout before it kills. */
const STOP_GRACE_SECONDS = 30;
/** How often the drain watcher reads the target lifecycle state; a termination waits at most this long. */
const LIFECYCLE_POLL_SECONDS = 5;
/** Kernel socket buffers sized for many concurrent RTP streams; the defaults drop packets under load. */
const UDP_BUFFER_BYTES = 26_214_400;
/** Period of the health watcher's probe of the media server. */
export const HEALTH_POLL_SECONDS = 10;
/**
 * Failed probes in a row before the host asks to be replaced: a minute, long enough for systemd to
 * restart a crashed server (5 s) and the server to start its workers, short enough that a host whose
 * server cannot come back (bad image, unreadable keys, dead workers) does not sit in the fleet for long.
 */
export const HEALTH_FAILURES_BEFORE_REPLACE = 6;

export function mediaHostScript(p: MediaHostScriptProps): string[] {
  const v = MEDIA_INSTANCE_VARIABLES;
  const stopSeconds = p.drainTimeoutSeconds + STOP_GRACE_SECONDS;
  const healthUrl = `http://127.0.0.1:${p.signalingPort}/health`;
  return [
    ...bootPreamble(p.region, p.bootSignal),
    `cat > /etc/sysctl.d/90-media.conf <<'EOF'`,
    `net.core.rmem_max = ${UDP_BUFFER_BYTES}`,
    `net.core.wmem_max = ${UDP_BUFFER_BYTES}`,
    'EOF',
    'sysctl --system',
    '',
    'install -d -m 0755 /etc/media-server /usr/local/lib/media-server',
    // The container's environment (env-file syntax, also sourced by the host scripts).
    `cat > /etc/media-server/media.env <<'EOF'`,
    // The media server's environment contract (runtime/protocol/mediaEnvironment.ts): the fleet's part.
    ...Object.entries(
      mediaEnvironment({
        region: p.region,
        tableName: p.tableName,
        listenHost: '0.0.0.0',
        signalingPort: p.signalingPort,
        rtcMinPort: p.rtcMinPort,
        rtcMaxPort: p.rtcMaxPort,
        drainTimeoutMs: p.drainTimeoutSeconds * 1000,
        logLevel: p.logLevel,
        // Production runs current mediasoup only; fail at start rather than fall back to the CI build.
        engine: 'current',
      }),
    ).map(([name, value]) => `${name}=${value}`),
    'EOF',
    // Host-only settings.
    `cat > /etc/media-server/host.env <<'EOF'`,
    `IMAGE_URI=${p.imageUri}`,
    `MEDIA_TOKEN_KEYS_SECRET_ARN=${p.mediaTokenKeysSecretArn}`,
    `LOG_GROUP=${p.logGroupName}`,
    `LIFECYCLE_HOOK_NAME=${p.lifecycleHookName}`,
    `HEALTH_URL=${healthUrl}`,
    'EOF',
    '',
    ...commonLibrary('/usr/local/lib/media-server', [
      '/etc/media-server/media.env',
      '/etc/media-server/host.env',
    ]),
    '',
    `cat > /usr/local/sbin/media-server-prepare <<'EOF'`,
    '#!/bin/bash',
    'set -euo pipefail',
    '. /usr/local/lib/media-server/common.sh',
    'instance_id=$(imds meta-data/instance-id)',
    'private_ip=$(imds meta-data/local-ipv4)',
    'public_ip=$(imds meta-data/public-ipv4)',
    '# Each read on a line of its own: under set -e a failed command substitution in an assignment stops',
    '# the script, where inside an echo its status would be lost and the server would start keyless.',
    'keys=$(aws secretsmanager get-secret-value --region "$REGION" --secret-id "$MEDIA_TOKEN_KEYS_SECRET_ARN" \\',
    '  --query SecretString --output text)',
    "# docker's --env-file takes the rest of one line as the value: compact JSON, and a check that it is JSON.",
    'keys=$(printf \'%s\' "$keys" | python3 -c \'import json, sys; print(json.dumps(json.load(sys.stdin), separators=(",", ":")))\')',
    '# Per-boot values and the keys live on tmpfs, readable by root only.',
    'install -d -m 0700 /run/media-server',
    'umask 077',
    // The instance's part of the contract (MEDIA_INSTANCE_VARIABLES), known only at boot.
    `printf '${v.serverId}=%s\\n${v.publicIp}=%s\\n${v.privateEndpoint}=ws://%s:%s\\n${v.mediaTokenKeys}=%s\\n' \\`,
    '  "$instance_id" "$public_ip" "$private_ip" "$SIGNALING_PORT" "$keys" > /run/media-server/instance.env.new',
    'mv /run/media-server/instance.env.new /run/media-server/instance.env',
    ...PULL_IMAGE,
    'EOF',
    '',
    `cat > /usr/local/sbin/media-server-run <<'EOF'`,
    '#!/bin/bash',
    'set -euo pipefail',
    '. /usr/local/lib/media-server/common.sh',
    'instance_id=$(imds meta-data/instance-id)',
    'docker rm -f media-server >/dev/null 2>&1 || true',
    'exec docker run --rm --name media-server --init --network host \\',
    '  --ulimit nofile=65536:65536 \\',
    '  --env-file /etc/media-server/media.env --env-file /run/media-server/instance.env \\',
    ...CONTAINER_LOG_OPTIONS,
    '  "$IMAGE_URI"',
    'EOF',
    '',
    `cat > /usr/local/sbin/media-drain-watch <<'EOF'`,
    '#!/bin/bash',
    'set -uo pipefail',
    '. /usr/local/lib/media-server/common.sh',
    '# The lifecycle state is in the instance metadata, so waiting costs no API calls.',
    'until [ "$(imds meta-data/autoscaling/target-lifecycle-state 2>/dev/null)" = Terminated ]; do',
    `  sleep ${LIFECYCLE_POLL_SECONDS}`,
    'done',
    'systemctl stop media-health-watch.service media-server.service',
    'instance_id=$(imds meta-data/instance-id)',
    'group=$(aws autoscaling describe-auto-scaling-instances --region "$REGION" --instance-ids "$instance_id" \\',
    "  --query 'AutoScalingInstances[0].AutoScalingGroupName' --output text) || exit 1",
    'exec aws autoscaling complete-lifecycle-action --region "$REGION" --auto-scaling-group-name "$group" \\',
    '  --lifecycle-hook-name "$LIFECYCLE_HOOK_NAME" --instance-id "$instance_id" --lifecycle-action-result CONTINUE',
    'EOF',
    '',
    `cat > /usr/local/sbin/media-health-watch <<'EOF'`,
    '#!/bin/bash',
    'set -uo pipefail',
    '. /usr/local/lib/media-server/common.sh',
    ...replaceWhenUnhealthy({
      probe: 'curl -fsS --max-time 3 -o /dev/null "$HEALTH_URL"',
      pollSeconds: HEALTH_POLL_SECONDS,
      failuresBeforeReplace: HEALTH_FAILURES_BEFORE_REPLACE,
      what: 'media server',
    }),
    'EOF',
    'chmod 0755 /usr/local/sbin/media-server-prepare /usr/local/sbin/media-server-run \\',
    '  /usr/local/sbin/media-drain-watch /usr/local/sbin/media-health-watch',
    '',
    ...containerUnit('media-server.service', {
      description: 'mediasoup media server (container)',
      prepare: '/usr/local/sbin/media-server-prepare',
      run: '/usr/local/sbin/media-server-run',
      stop: 'media-server',
      stopSeconds,
    }),
    ...watcherUnit(
      'media-drain-watch.service',
      'Drain the media server when Auto Scaling terminates this instance',
      'media-server.service',
      '/usr/local/sbin/media-drain-watch',
    ),
    ...watcherUnit(
      'media-health-watch.service',
      'Mark this instance unhealthy when the media server stays down',
      'media-server.service',
      '/usr/local/sbin/media-health-watch',
    ),
    'systemctl daemon-reload',
    'systemctl enable media-server.service media-drain-watch.service media-health-watch.service',
    '# Fails (and so signals FAILURE) when media-server-prepare fails: keys unreadable, image not pulled.',
    'systemctl start media-server.service',
    ...waitUntilHealthy(
      `curl -fsS --max-time 3 -o /dev/null ${healthUrl}`,
      p.bootHealthTimeoutSeconds,
      `the media server did not answer ${healthUrl}`,
    ),
    'systemctl start media-drain-watch.service media-health-watch.service',
    'boot_signal SUCCESS',
  ];
}
