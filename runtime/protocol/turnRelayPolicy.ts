/**
 * What a TURN relay of this platform may do, as coturn configuration lines. The AWS relays
 * (lib/turn-relay.ts) and the local ones (runtime/local/TurnRelay.ts) both render their peer rules and
 * hardening from here, so the two cannot drift apart.
 *
 * Peer policy. A TURN relay sends UDP wherever its client asks, from inside our network: without rules
 * it is a way into anything the relay host can reach (the classic TURN SSRF: instance metadata, the VPC
 * resolver, internal services). Media of this platform only ever flows between a client and its
 * region's media servers, so a relay may reach exactly those and nothing else:
 *
 *   - every peer is denied (`denied-peer-ip` over all of IPv4 and IPv6), and the special-purpose ranges
 *     are denied again by name, so coturn's log names the range that refused a peer;
 *   - the caller's `allowedPeers` (the region's media servers) are allowed. coturn checks its allow list
 *     before its deny list, so an allowed range wins over every deny; that is why an allowed range may
 *     never cover the ranges in `NEVER_ALLOWED_IPV4` (instance metadata, "this host", multicast), and
 *     why `coturnPeerPolicy` refuses one that does rather than trusting the deny lines.
 *
 * coturn matches peers by address only, never by port; ports are the security groups' job on AWS.
 */

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** coturn's default listening port for TURN over UDP and TCP (RFC 5766). */
export const TURN_PORT = 3478;

/**
 * Lifetime of the credentials join answers carry (runtime/lb/turnCredentials.ts explains the choice).
 * The default covers a working day's meeting.
 */
export const TURN_CREDENTIAL_TTL_S = 8 * 3600;
/** Shorter would expire before the first allocation refresh (coturn's default lifetime is 600 s). */
export const TURN_CREDENTIAL_MIN_TTL_S = 600;
/** Longer keeps a leaked credential useful for more than a day. */
export const TURN_CREDENTIAL_MAX_TTL_S = 24 * 3600;

/** One denied range and why it is denied. */
export interface PeerRange {
  /** `first-last` as coturn's `denied-peer-ip` takes it. */
  readonly range: string;
  readonly reason: string;
}

const ALL_IPV6 = '::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';

/** Everything: the default of the peer policy. Only `allowedPeers` get through. */
export const DENY_ALL_PEERS: readonly PeerRange[] = [
  { range: '0.0.0.0-255.255.255.255', reason: 'every IPv4 peer that is not a media server of the region' },
  { range: ALL_IPV6, reason: 'every IPv6 peer: media servers are reached over IPv4' },
];

/**
 * Special-purpose ranges (IANA registries, RFC 6890), denied by name on top of `DENY_ALL_PEERS`. They
 * document what the relay must never reach, and coturn logs the matching range when it refuses a peer.
 *
 * coturn reads a range whose first address is all zeros as having no lower end, and orders addresses
 * of different families by family (every IPv4 address below every IPv6 one): `::-::1` would refuse
 * every IPv4 peer under its own name. So no range here starts at `::`, and the IPv6 ranges come first:
 * coturn scans from the last line, so an IPv4 peer meets the IPv4 ranges before any IPv6 one. (Both
 * quirks only ever widen a deny; the allow list holds IPv4 ranges that never start at zero.)
 */
export const DENIED_PEER_RANGES: readonly PeerRange[] = [
  { range: '::1', reason: 'IPv6 loopback' },
  {
    range: '::ffff:0.0.0.0-::ffff:255.255.255.255',
    reason: 'IPv4-mapped IPv6: would reach IPv4 peers past the IPv4 rules',
  },
  { range: '64:ff9b::-64:ff9b::ffff:ffff', reason: 'NAT64: would reach IPv4 peers past the IPv4 rules' },
  { range: '100::-100::ffff:ffff:ffff:ffff', reason: 'discard-only' },
  { range: '2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', reason: 'documentation' },
  {
    range: 'fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    reason: 'unique local: EC2 IPv6 instance metadata fd00:ec2::254, Amazon DNS fd00:ec2::253',
  },
  { range: 'fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', reason: 'IPv6 link-local' },
  { range: 'ff00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', reason: 'IPv6 multicast' },
  {
    range: '0.0.0.0-0.255.255.255',
    reason: '"this network": Linux delivers 0.0.0.0 to the relay host itself (CVE-2020-26262)',
  },
  { range: '10.0.0.0-10.255.255.255', reason: 'private (RFC 1918): VPCs, internal services' },
  { range: '100.64.0.0-100.127.255.255', reason: 'shared address space (RFC 6598)' },
  { range: '127.0.0.0-127.255.255.255', reason: 'loopback: services of the relay host' },
  {
    range: '169.254.0.0-169.254.255.255',
    reason:
      'link-local: EC2 instance metadata 169.254.169.254, Amazon DNS 169.254.169.253, time sync ' +
      '169.254.169.123; security groups do not filter these',
  },
  { range: '172.16.0.0-172.31.255.255', reason: 'private (RFC 1918)' },
  { range: '192.0.0.0-192.0.0.255', reason: 'IETF protocol assignments' },
  { range: '192.0.2.0-192.0.2.255', reason: 'documentation (TEST-NET-1)' },
  { range: '192.88.99.0-192.88.99.255', reason: '6to4 relay anycast' },
  { range: '192.168.0.0-192.168.255.255', reason: 'private (RFC 1918)' },
  { range: '198.18.0.0-198.19.255.255', reason: 'benchmarking' },
  { range: '198.51.100.0-198.51.100.255', reason: 'documentation (TEST-NET-2)' },
  { range: '203.0.113.0-203.0.113.255', reason: 'documentation (TEST-NET-3)' },
  { range: '224.0.0.0-255.255.255.255', reason: 'multicast, reserved and broadcast' },
];

/**
 * IPv4 ranges an allowed peer range must not touch: coturn's allow list beats its deny list, so
 * allowing any of these would reopen it.
 */
export const NEVER_ALLOWED_IPV4: readonly PeerRange[] = [
  { range: '0.0.0.0-0.255.255.255', reason: '"this network" (0.0.0.0 reaches the relay host)' },
  { range: '169.254.0.0-169.254.255.255', reason: 'link-local (instance metadata, Amazon DNS)' },
  { range: '224.0.0.0-255.255.255.255', reason: 'multicast, reserved and broadcast' },
];

const LOOPBACK = ipv4Range('127.0.0.0/8');

/**
 * Allocations one TURN username may hold at once. A username is one join's credential: mediasoup-client
 * opens two transports, each allocating once per TURN URL (UDP, TCP, TLS), and an ICE restart may
 * overlap the old allocations with new ones: 2 x 3 x 2. A leaked credential can hold no more.
 */
export const TURN_USER_QUOTA = 12;

/**
 * Options every relay runs with, local or on AWS, and why.
 */
export const COTURN_HARDENING: readonly string[] = [
  // Time-limited credentials from the shared secret (TURN REST API); nothing else authenticates.
  'use-auth-secret',
  // Browsers only ever ask for UDP relays; TCP relays (RFC 6062) would let a client open TCP
  // connections to allowed peers (locally: the LB and DynamoDB emulator on the region's address).
  'no-tcp-relay',
  // Browsers reach TURN over UDP, TCP or TLS, never DTLS.
  'no-dtls',
  'no-tlsv1',
  'no-tlsv1_1',
  'fingerprint',
  // A nonce lives 10 minutes; then the client gets 438 and re-authenticates, as RFC 5766 clients do.
  'stale-nonce=600',
  // NAT behaviour discovery and old-style binding answers only enlarge responses (amplification).
  'no-rfc5780',
  'no-stun-backward-compatibility',
  'response-origin-only-with-rfc5780',
  'no-software-attribute',
  // No telnet CLI (it would listen on 127.0.0.1:5766); the web admin is off unless asked for.
  'no-cli',
  `user-quota=${TURN_USER_QUOTA}`,
];

/**
 * What coturn prints when it skips a configuration line instead of failing: a relay whose log shows
 * one of these runs without a rule it was given, so its start counts as failed.
 */
export const COTURN_CONFIG_ERRORS = /Bad configuration format|Wrong address format|ERROR: Cannot open SQLite/;

/** Thrown for a policy input coturn must not run with; the message names the field and the value. */
export class TurnPolicyError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'TurnPolicyError';
  }
}

/**
 * The peer rules for a relay that may reach `allowedPeers` (IPv4 addresses, `first-last` ranges or
 * CIDRs) and nothing else. Deny lines come first: coturn scans its deny list from the last line, so
 * a refused peer is logged with the most specific range, not with the catch-all.
 */
export function coturnPeerPolicy(allowedPeers: readonly string[], field = 'allowedPeers'): string[] {
  if (allowedPeers.length === 0) {
    throw new TurnPolicyError(
      field,
      "is empty; a relay must be allowed to reach its region's media servers (their addresses or subnets)",
    );
  }
  const allowed = allowedPeers.map((peer, i) => {
    const at = `${field}[${i}]`;
    const range = parseIpv4Peer(peer, at);
    for (const never of NEVER_ALLOWED_IPV4) {
      const bad = ipv4Range(never.range);
      if (range.first <= bad.last && bad.first <= range.last) {
        throw new TurnPolicyError(
          at,
          `"${peer}" overlaps ${never.range} (${never.reason}); coturn's allow list overrides its deny ` +
            'list, so allow only the addresses of the media servers',
        );
      }
    }
    return range;
  });
  const touchesLoopback = allowed.some((r) => r.first <= LOOPBACK.last && LOOPBACK.first <= r.last);
  return [
    'no-multicast-peers',
    // coturn refuses every loopback peer before it looks at any list unless this is set; a local relay
    // whose media servers live on 127.x needs it, and the deny-all lines still refuse every other
    // loopback address.
    ...(touchesLoopback ? ['allow-loopback-peers'] : []),
    ...[...DENY_ALL_PEERS, ...DENIED_PEER_RANGES].map((r) => `denied-peer-ip=${r.range}`),
    ...allowed.map((r) => `allowed-peer-ip=${formatRange(r)}`),
  ];
}

/**
 * A TURN shared secret as it goes into a coturn config line: printable ASCII without spaces or `#`
 * (a config line ends at the newline and `#` would read as a comment), at least 32 characters like the
 * token keys (runtime/protocol/tokens.ts).
 */
export function checkTurnSecret(secret: string, field: string): string {
  if (!/^[!-~]{32,512}$/.test(secret) || secret.includes('#')) {
    throw new TurnPolicyError(
      field,
      `is not a usable TURN secret (${secret.length} characters); use 32-512 printable ASCII characters ` +
        'without spaces or "#"',
    );
  }
  return secret;
}

export interface Ipv4Range {
  /** First and last address as unsigned 32-bit integers. */
  readonly first: number;
  readonly last: number;
}

export function ipv4ToInt(address: string): number | undefined {
  const m = IPV4.exec(address);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return octets.reduce((acc, o) => acc * 256 + o, 0);
}

export function intToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** `a.b.c.d`, `first-last` or `a.b.c.d/n` as a range; throws for anything else. */
export function ipv4Range(text: string): Ipv4Range {
  const range = tryIpv4Range(text);
  if (!range) throw new Error(`"${text}" is not an IPv4 address, range or CIDR`);
  return range;
}

function tryIpv4Range(text: string): Ipv4Range | undefined {
  const cidr = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  if (cidr) {
    const base = ipv4ToInt(cidr[1]!);
    const bits = Number(cidr[2]);
    if (base === undefined || bits > 32) return undefined;
    const size = 2 ** (32 - bits);
    if (base % size !== 0) return undefined;
    return { first: base, last: base + size - 1 };
  }
  const dash = text.split('-');
  if (dash.length === 2) {
    const first = ipv4ToInt(dash[0]!);
    const last = ipv4ToInt(dash[1]!);
    if (first === undefined || last === undefined || first > last) return undefined;
    return { first, last };
  }
  const single = ipv4ToInt(text);
  return single === undefined ? undefined : { first: single, last: single };
}

function parseIpv4Peer(peer: string, at: string): Ipv4Range {
  const range = tryIpv4Range(peer);
  if (!range) {
    throw new TurnPolicyError(
      at,
      `"${peer}" is not an IPv4 address, "first-last" range or CIDR (such as "10.1.0.0/18")`,
    );
  }
  return range;
}

export function formatRange(range: Ipv4Range): string {
  return range.first === range.last
    ? intToIpv4(range.first)
    : `${intToIpv4(range.first)}-${intToIpv4(range.last)}`;
}
