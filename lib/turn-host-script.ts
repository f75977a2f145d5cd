/**
 * First-boot script of a TURN relay host (Amazon Linux 2023). Amazon Linux 2023 ships no coturn in its
 * core repositories, so the host runs the coturn project's own image (runtime/turn/Dockerfile, mirrored
 * into this region's CDK asset repository, so a boot never depends on Docker Hub) with host networking,
 * as uid 65534, under two systemd units:
 *
 *   turn-relay.service         before each start (turn-relay-prepare) reads this region's replica of the
 *                              TURN secret and the host's private address, writes coturn's config on
 *                              tmpfs (root and the relay's group only) and pulls the image; fails if any
 *                              of that fails. Then runs the container, restarted if it dies.
 *   turn-health-watch.service  probes the relay (a STUN Binding over UDP and a TCP connect); when it has
 *                              failed HEALTH_FAILURES_BEFORE_REPLACE times in a row on a host that is in
 *                              service, marks the instance unhealthy so Auto Scaling replaces it. The
 *                              load balancer's target health (TCP) covers the TCP listener as well.
 *
 * The boot reports to CloudFormation like a media host's: success once the relay answers both probes
 * and its log shows no configuration line it skipped (coturn runs on without a rule it cannot parse),
 * failure as soon as any step fails. Values may be CDK tokens; nothing here names another region.
 */
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
import { COTURN_CONFIG_ERRORS, TURN_PORT } from '../runtime/protocol/turnRelayPolicy';

export interface TurnHostScriptProps {
  readonly region: string;
  /** Full ARN of this region's replica of the TURN secret. */
  readonly turnSecretArn: string;
  /** Full image URI (registry/repository:tag) in this region's ECR. */
  readonly imageUri: string;
  readonly logGroupName: string;
  /**
   * Every line of coturn's config that does not depend on the host: ports, realm, hardening and the
   * peer policy. The host adds its listening and relay address and the secrets.
   */
  readonly staticConfig: readonly string[];
  /** Where the boot reports; @default - no boot signal (a group without a creation policy). */
  readonly bootSignal?: BootSignalTarget;
  readonly bootHealthTimeoutSeconds: number;
}

/** The user coturn runs as inside its image (Debian's nobody:nogroup); the config is readable by it. */
export const TURN_RELAY_UID = 65534;
/** Period of the health watcher's probe. */
export const TURN_HEALTH_POLL_SECONDS = 10;
/** A minute of failed probes: longer than systemd takes to restart a crashed relay (5 s). */
export const TURN_HEALTH_FAILURES_BEFORE_REPLACE = 6;
/** `docker stop` grace: coturn takes about two seconds to close its threads. */
const STOP_SECONDS = 15;

/**
 * Probe of one relay: a STUN Binding request over UDP (RFC 5389) that must be answered with our
 * transaction id, then a TCP connect. Python 3 is part of Amazon Linux 2023.
 */
const PROBE_SCRIPT = [
  '#!/usr/bin/env python3',
  '"""Exit 0 when the TURN relay at argv[1]:argv[2] answers a STUN Binding over UDP and accepts TCP."""',
  'import os, socket, struct, sys',
  'host, port = sys.argv[1], int(sys.argv[2])',
  'try:',
  '    tid = os.urandom(12)',
  '    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
  '    udp.settimeout(2)',
  "    udp.sendto(struct.pack('!HHI', 0x0001, 0, 0x2112A442) + tid, (host, port))",
  '    answer, _ = udp.recvfrom(2048)',
  "    if len(answer) < 20 or struct.unpack('!H', answer[:2])[0] != 0x0101 or answer[8:20] != tid:",
  '        sys.exit(1)',
  '    socket.create_connection((host, port), timeout=2).close()',
  'except OSError as err:',
  "    print(f'turn-probe: {err}', file=sys.stderr)",
  '    sys.exit(1)',
];

/**
 * Turns the secret document (`{"kid", "secret", "verify": [...]}`, as the key sets) into coturn's
 * `static-auth-secret` lines, current first, after checking each secret fits on a config line.
 */
const SECRET_LINES_SCRIPT = [
  '#!/usr/bin/env python3',
  '"""Reads the TURN secret document on stdin; prints coturn\'s static-auth-secret lines, current first."""',
  'import json, re, sys',
  'doc = json.load(sys.stdin)',
  "secrets = [doc['secret']] + [v['secret'] for v in doc.get('verify', [])]",
  'for s in secrets:',
  "    if not isinstance(s, str) or not re.fullmatch(r'[!-~]{32,512}', s) or '#' in s:",
  "        sys.exit('turn-relay-prepare: a TURN secret is not 32-512 printable characters without spaces or #')",
  "print('\\n'.join('static-auth-secret=' + s for s in secrets))",
];

export function turnHostScript(p: TurnHostScriptProps): string[] {
  const configErrors = COTURN_CONFIG_ERRORS.source;
  return [
    ...bootPreamble(p.region, p.bootSignal),
    'install -d -m 0755 /etc/turn-relay /usr/local/lib/turn-relay',
    // Everything but the address and the secrets; no secret ever lands on the disk.
    `cat > /etc/turn-relay/turnserver.base.conf <<'EOF'`,
    ...p.staticConfig,
    'EOF',
    `cat > /etc/turn-relay/host.env <<'EOF'`,
    `REGION=${p.region}`,
    `IMAGE_URI=${p.imageUri}`,
    `TURN_SECRET_ARN=${p.turnSecretArn}`,
    `LOG_GROUP=${p.logGroupName}`,
    `TURN_PORT=${TURN_PORT}`,
    'EOF',
    '',
    ...commonLibrary('/usr/local/lib/turn-relay', ['/etc/turn-relay/host.env']),
    '',
    `cat > /usr/local/sbin/turn-probe <<'EOF'`,
    ...PROBE_SCRIPT,
    'EOF',
    '',
    `cat > /usr/local/lib/turn-relay/secret-lines <<'EOF'`,
    ...SECRET_LINES_SCRIPT,
    'EOF',
    '',
    `cat > /usr/local/sbin/turn-relay-prepare <<'EOF'`,
    '#!/bin/bash',
    'set -euo pipefail',
    '. /usr/local/lib/turn-relay/common.sh',
    'private_ip=$(imds meta-data/local-ipv4)',
    '# Each read on a line of its own: under set -e a failed command substitution in an assignment stops',
    '# the script, where inside a pipeline its status would be lost and the relay would start secretless.',
    'doc=$(aws secretsmanager get-secret-value --region "$REGION" --secret-id "$TURN_SECRET_ARN" \\',
    '  --query SecretString --output text)',
    'secret_lines=$(printf \'%s\' "$doc" | python3 /usr/local/lib/turn-relay/secret-lines)',
    '# On tmpfs, readable by root and the relay (the container user) only.',
    `install -d -m 0750 -g ${TURN_RELAY_UID} /run/turn-relay`,
    'umask 027',
    '{',
    '  printf \'listening-ip=%s\\nrelay-ip=%s\\n\' "$private_ip" "$private_ip"',
    '  cat /etc/turn-relay/turnserver.base.conf',
    '  printf \'%s\\n\' "$secret_lines"',
    '} > /run/turn-relay/turnserver.conf.new',
    `chgrp ${TURN_RELAY_UID} /run/turn-relay/turnserver.conf.new`,
    'mv /run/turn-relay/turnserver.conf.new /run/turn-relay/turnserver.conf',
    ...PULL_IMAGE,
    'EOF',
    '',
    `cat > /usr/local/sbin/turn-relay-run <<'EOF'`,
    '#!/bin/bash',
    'set -euo pipefail',
    '. /usr/local/lib/turn-relay/common.sh',
    'instance_id=$(imds meta-data/instance-id)',
    'docker rm -f turn-relay >/dev/null 2>&1 || true',
    // Host networking: coturn binds the private address and allocates relay ports directly (Docker's port
    // publishing performs badly over large ranges). Its SQLite file lives on tmpfs.
    `exec docker run --rm --name turn-relay --network host --user ${TURN_RELAY_UID}:${TURN_RELAY_UID} \\`,
    '  --ulimit nofile=65536:65536 --mount type=tmpfs,destination=/var/lib/coturn \\',
    '  -v /run/turn-relay/turnserver.conf:/etc/coturn/turnserver.conf:ro \\',
    ...CONTAINER_LOG_OPTIONS,
    '  "$IMAGE_URI" -c /etc/coturn/turnserver.conf',
    'EOF',
    '',
    `cat > /usr/local/sbin/turn-health-watch <<'EOF'`,
    '#!/bin/bash',
    'set -uo pipefail',
    '. /usr/local/lib/turn-relay/common.sh',
    'private_ip=$(imds meta-data/local-ipv4)',
    ...replaceWhenUnhealthy({
      probe: '/usr/local/sbin/turn-probe "$private_ip" "$TURN_PORT"',
      pollSeconds: TURN_HEALTH_POLL_SECONDS,
      failuresBeforeReplace: TURN_HEALTH_FAILURES_BEFORE_REPLACE,
      what: 'TURN relay',
    }),
    'EOF',
    'chmod 0755 /usr/local/sbin/turn-probe /usr/local/sbin/turn-relay-prepare /usr/local/sbin/turn-relay-run \\',
    '  /usr/local/sbin/turn-health-watch',
    '',
    ...containerUnit('turn-relay.service', {
      description: 'coturn TURN relay (container)',
      prepare: '/usr/local/sbin/turn-relay-prepare',
      run: '/usr/local/sbin/turn-relay-run',
      stop: 'turn-relay',
      stopSeconds: STOP_SECONDS,
    }),
    ...watcherUnit(
      'turn-health-watch.service',
      'Mark this instance unhealthy when the TURN relay stays down',
      'turn-relay.service',
      '/usr/local/sbin/turn-health-watch',
    ),
    'systemctl daemon-reload',
    'systemctl enable turn-relay.service turn-health-watch.service',
    '# Fails (and so signals FAILURE) when turn-relay-prepare fails: secret unreadable, image not pulled.',
    'systemctl start turn-relay.service',
    '. /usr/local/lib/turn-relay/common.sh',
    'private_ip=$(imds meta-data/local-ipv4)',
    ...waitUntilHealthy(
      '/usr/local/sbin/turn-probe "$private_ip" "$TURN_PORT"',
      p.bootHealthTimeoutSeconds,
      'the TURN relay did not answer on $private_ip:$TURN_PORT',
    ),
    '# coturn runs on without a line it cannot parse; a skipped peer rule would be a hole, so that is a failed boot.',
    `if docker logs turn-relay 2>&1 | grep -E '${configErrors}'; then`,
    '  echo "coturn skipped part of its configuration" >&2',
    '  exit 1',
    'fi',
    'systemctl start turn-health-watch.service',
    'boot_signal SUCCESS',
  ];
}
