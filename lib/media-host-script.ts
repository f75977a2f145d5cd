/**
 * First-boot script of a media host (Amazon Linux 2023). The host runs the media server image from
 * this region's CDK asset repository with host networking (mediasoup binds the public RTC port range
 * directly) and two systemd units:
 *
 *   media-server.service       pulls and runs the container; restarted if it dies; stopping it sends
 *                              SIGTERM, on which the server marks itself draining and exits once its
 *                              rooms are empty or DRAIN_TIMEOUT_MS has passed.
 *   media-drain-watch.service  polls the Auto Scaling target lifecycle state in the instance metadata;
 *                              when the instance is being terminated it stops media-server (the drain)
 *                              and then completes the termination lifecycle action so Auto Scaling goes on.
 *
 * Values may be CDK tokens (image URI, log group name); CloudFormation fills them in before cloud-init
 * runs the script. Nothing here names another region.
 */

export interface MediaHostScriptProps {
  readonly region: string;
  readonly tableName: string;
  /** Name of this region's replica of the join-token secret. */
  readonly secretName: string;
  /** Full image URI (registry/repository:tag) in this region's ECR. */
  readonly imageUri: string;
  readonly logGroupName: string;
  readonly lifecycleHookName: string;
  readonly signalingPort: number;
  readonly rtcMinPort: number;
  readonly rtcMaxPort: number;
  readonly drainTimeoutSeconds: number;
  readonly logLevel: string;
}

/** `docker stop` waits this much beyond the server's own drain timeout before it kills. */
const STOP_GRACE_SECONDS = 30;
/** How often the drain watcher reads the target lifecycle state; a termination waits at most this long. */
const LIFECYCLE_POLL_SECONDS = 5;
/** Kernel socket buffers sized for many concurrent RTP streams; the defaults drop packets under load. */
const UDP_BUFFER_BYTES = 26_214_400;

export function mediaHostScript(p: MediaHostScriptProps): string[] {
  const stopSeconds = p.drainTimeoutSeconds + STOP_GRACE_SECONDS;
  return [
    'set -euo pipefail',
    'dnf install -y docker',
    'systemctl enable --now docker',
    '',
    `cat > /etc/sysctl.d/90-media.conf <<'EOF'`,
    `net.core.rmem_max = ${UDP_BUFFER_BYTES}`,
    `net.core.wmem_max = ${UDP_BUFFER_BYTES}`,
    'EOF',
    'sysctl --system',
    '',
    'install -d -m 0755 /etc/media-server /usr/local/lib/media-server',
    // The container's environment (env-file syntax, also sourced by the host scripts).
    `cat > /etc/media-server/media.env <<'EOF'`,
    `REGION=${p.region}`,
    `TABLE_NAME=${p.tableName}`,
    'LISTEN_HOST=0.0.0.0',
    `SIGNALING_PORT=${p.signalingPort}`,
    `RTC_MIN_PORT=${p.rtcMinPort}`,
    `RTC_MAX_PORT=${p.rtcMaxPort}`,
    `DRAIN_TIMEOUT_MS=${p.drainTimeoutSeconds * 1000}`,
    `LOG_LEVEL=${p.logLevel}`,
    // Production runs current mediasoup only; fail at start rather than fall back to the CI build.
    'MEDIA_ENGINE=current',
    'EOF',
    // Host-only settings.
    `cat > /etc/media-server/host.env <<'EOF'`,
    `IMAGE_URI=${p.imageUri}`,
    `SECRET_ID=${p.secretName}`,
    `LOG_GROUP=${p.logGroupName}`,
    `LIFECYCLE_HOOK_NAME=${p.lifecycleHookName}`,
    'EOF',
    '',
    `cat > /usr/local/lib/media-server/common.sh <<'EOF'`,
    'set -a; . /etc/media-server/media.env; . /etc/media-server/host.env; set +a',
    '# IMDSv2 only: every read takes a fresh session token.',
    'imds() {',
    '  local token',
    "  token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')",
    '  curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/$1"',
    '}',
    'EOF',
    '',
    `cat > /usr/local/sbin/media-server-run <<'EOF'`,
    '#!/bin/bash',
    'set -euo pipefail',
    '. /usr/local/lib/media-server/common.sh',
    'instance_id=$(imds meta-data/instance-id)',
    'private_ip=$(imds meta-data/local-ipv4)',
    'public_ip=$(imds meta-data/public-ipv4)',
    '# Per-boot values and the signing key live on tmpfs, readable by root only.',
    'install -d -m 0700 /run/media-server',
    'umask 077',
    '{',
    '  echo "SERVER_ID=$instance_id"',
    '  echo "PUBLIC_IP=$public_ip"',
    '  echo "PRIVATE_ENDPOINT=ws://$private_ip:$SIGNALING_PORT"',
    '  echo "TOKEN_SECRET=$(aws secretsmanager get-secret-value --region "$REGION" --secret-id "$SECRET_ID" --query SecretString --output text)"',
    '} > /run/media-server/instance.env',
    'aws ecr get-login-password --region "$REGION" | docker login --username AWS --password-stdin "${IMAGE_URI%%/*}"',
    'docker pull "$IMAGE_URI"',
    'docker rm -f media-server >/dev/null 2>&1 || true',
    'exec docker run --rm --name media-server --init --network host \\',
    '  --ulimit nofile=65536:65536 \\',
    '  --env-file /etc/media-server/media.env --env-file /run/media-server/instance.env \\',
    '  --log-driver awslogs --log-opt awslogs-region="$REGION" --log-opt awslogs-group="$LOG_GROUP" \\',
    '  --log-opt awslogs-stream="$instance_id" \\',
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
    'systemctl stop media-server.service',
    'instance_id=$(imds meta-data/instance-id)',
    'group=$(aws autoscaling describe-auto-scaling-instances --region "$REGION" --instance-ids "$instance_id" \\',
    "  --query 'AutoScalingInstances[0].AutoScalingGroupName' --output text) || exit 1",
    'exec aws autoscaling complete-lifecycle-action --region "$REGION" --auto-scaling-group-name "$group" \\',
    '  --lifecycle-hook-name "$LIFECYCLE_HOOK_NAME" --instance-id "$instance_id" --lifecycle-action-result CONTINUE',
    'EOF',
    'chmod 0755 /usr/local/sbin/media-server-run /usr/local/sbin/media-drain-watch',
    '',
    `cat > /etc/systemd/system/media-server.service <<'EOF'`,
    '[Unit]',
    'Description=mediasoup media server (container)',
    'Requires=docker.service',
    'After=docker.service network-online.target',
    'Wants=network-online.target',
    '[Service]',
    'ExecStart=/usr/local/sbin/media-server-run',
    `ExecStop=/usr/bin/docker stop --time ${stopSeconds} media-server`,
    'TimeoutStartSec=600',
    `TimeoutStopSec=${stopSeconds + 30}`,
    'Restart=always',
    'RestartSec=5',
    '[Install]',
    'WantedBy=multi-user.target',
    'EOF',
    `cat > /etc/systemd/system/media-drain-watch.service <<'EOF'`,
    '[Unit]',
    'Description=Drain the media server when Auto Scaling terminates this instance',
    'After=media-server.service',
    '[Service]',
    'ExecStart=/usr/local/sbin/media-drain-watch',
    'Restart=on-failure',
    'RestartSec=10',
    '[Install]',
    'WantedBy=multi-user.target',
    'EOF',
    'systemctl daemon-reload',
    'systemctl enable --now media-server.service media-drain-watch.service',
  ];
}
