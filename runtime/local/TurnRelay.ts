/**
 * One local region's TURN relay: Debian's coturn (`turnserver`) as a child process on the region's
 * loopback address, with the shared-secret credentials (runtime/lb/turnCredentials.ts) and the peer
 * policy (runtime/protocol/turnRelayPolicy.ts) the AWS relays use.
 *
 * Listeners: TURN over UDP and TCP on `port`, TURN over TLS on `tlsPort` with a self-signed certificate
 * made at start (openssl; its subject names the address, so a client can pin it). No DTLS, no telnet
 * CLI, no web admin. Relayed media goes only to `allowedPeers`, the region's media servers: locally
 * that is the region's own address, which every process of the region shares; coturn filters peers by
 * address only, and `no-tcp-relay` keeps the region's TCP services (LB, DynamoDB emulator) out of
 * reach, so what a client can relay to is the UDP ports on that address, i.e. the media servers.
 *
 * Everything the relay writes lives in `stateDir` (mode 0700): its config (which holds the secret,
 * 0600), certificate and key, pid file, its own SQLite file (coturn opens one even when unused; the
 * system default under /var/lib is root's), and the log (coturn's output). So it runs the same as root
 * and as any user. The config and key are deleted when the relay closes.
 *
 * `start()` resolves only once the relay answers a STUN Binding request over UDP and accepts TCP (and
 * TLS) connections, and fails with coturn's last log lines if it exits first or logs a configuration
 * line it skipped (coturn carries on without a rule it could not parse).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  checkTurnSecret,
  COTURN_CONFIG_ERRORS,
  COTURN_HARDENING,
  coturnPeerPolicy,
  TURN_PORT,
  TurnPolicyError,
} from '../protocol/turnRelayPolicy';

/** coturn's default TLS port; the AWS relays take TLS on 443 at their load balancer instead. */
export const TURN_TLS_PORT = 5349;
/**
 * Relay ports: one per allocation. Outside the local media servers' RTC ports (10000 and up, a
 * thousand per server) and below Linux's ephemeral range, and the same in every region because each
 * region has its own address.
 */
export const LOCAL_RELAY_PORT_MIN = 50000;
export const LOCAL_RELAY_PORT_MAX = 50999;
const START_TIMEOUT_MS = 10_000;
/** coturn takes about two seconds to exit on SIGTERM (it closes its threads one by one). */
const STOP_GRACE_MS = 5_000;
const PROBE_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 500;
/** The self-signed certificate outlives any local run. */
const CERT_DAYS = 30;
const LOG_TAIL_LINES = 15;

export interface TurnRelayOptions {
  /** Region name, for messages. */
  readonly region: string;
  /** Loopback address to listen on and relay from: the region's address. */
  readonly address: string;
  /** TURN over UDP and TCP. @default 3478 */
  readonly port?: number;
  /** TURN over TLS. @default 5349 */
  readonly tlsPort?: number;
  /**
   * Serve TURN over TLS with a self-signed certificate made by openssl at start.
   * @default true
   */
  readonly tls?: boolean;
  /** @default LOCAL_RELAY_PORT_MIN */
  readonly relayPortMin?: number;
  /** @default LOCAL_RELAY_PORT_MAX */
  readonly relayPortMax?: number;
  /** TURN realm: what clients see in the 401 challenge. */
  readonly realm: string;
  /**
   * Shared secrets the relay accepts, the signing (current) one first; more than one during a rotation.
   */
  readonly secrets: readonly string[];
  /** What relayed media may reach: the region's media servers (addresses, ranges or CIDRs, IPv4). */
  readonly allowedPeers: readonly string[];
  /** Directory for the relay's files (created 0700). */
  readonly stateDir: string;
  /** @default 'turnserver' from PATH */
  readonly turnserverPath?: string;
  /** @default 'openssl' from PATH */
  readonly opensslPath?: string;
  /** @default 10 s */
  readonly startTimeoutMs?: number;
}

/** Thrown when a relay cannot be started; the message says what to do. */
export class TurnRelayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TurnRelayError';
  }
}

export interface TurnRelayFiles {
  readonly config: string;
  readonly log: string;
  readonly pid: string;
  readonly database: string;
  /** PEM certificate of the TLS listener (self-signed; clients that verify trust this file). */
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

/** What the region's join answers point clients at (runtime/lb/turnCredentials.ts TurnEndpoint). */
export interface LocalTurnEndpoint {
  readonly host: string;
  readonly port: number;
  readonly tlsPort: number | undefined;
}

interface Settings {
  readonly region: string;
  readonly address: string;
  readonly port: number;
  readonly tlsPort: number | undefined;
  readonly relayPortMin: number;
  readonly relayPortMax: number;
  readonly realm: string;
  readonly secrets: readonly string[];
  readonly allowedPeers: readonly string[];
  readonly stateDir: string;
  readonly turnserverPath: string;
  readonly opensslPath: string;
  readonly startTimeoutMs: number;
}

export interface TurnRelayEvents {
  /** The process ended without `close()`: a crash, or someone killed it. */
  exit: [code: number | null, signal: NodeJS.Signals | null];
  close: [];
}

export class TurnRelay extends EventEmitter<TurnRelayEvents> {
  private closing: Promise<void> | undefined;
  private exited = false;
  private spawnError: NodeJS.ErrnoException | undefined;
  private readonly exitedPromise: Promise<void>;

  private constructor(
    readonly region: string,
    readonly endpoint: LocalTurnEndpoint,
    readonly files: TurnRelayFiles,
    private readonly proc: ChildProcess,
  ) {
    super();
    this.exitedPromise = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exited = true;
        resolve();
        if (!this.closing) this.emit('exit', code, signal);
      });
      // A process that could not be spawned never exits: count it as gone so nothing waits for it.
      proc.once('error', (err: NodeJS.ErrnoException) => {
        this.spawnError = err;
        this.exited = true;
        resolve();
      });
    });
  }

  /** Writes the relay's files, starts coturn and waits until it answers on every listener. */
  static async start(options: TurnRelayOptions): Promise<TurnRelay> {
    const prepared = await prepareTurnRelay(options);
    const { files, command } = prepared;
    const log = fs.openSync(files.log, 'w', 0o600);
    let proc: ChildProcess;
    try {
      proc = spawn(command.file, [...command.args], { stdio: ['ignore', log, log] });
    } finally {
      fs.closeSync(log);
    }
    const relay = new TurnRelay(prepared.region, prepared.endpoint, files, proc);
    try {
      await relay.waitReady(prepared);
    } catch (err) {
      await relay.close();
      throw err;
    }
    return relay;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** Stops coturn (SIGTERM, SIGKILL after a grace period) and deletes the files holding secrets. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.exited && this.proc.pid !== undefined) {
        this.proc.kill('SIGTERM');
        const timer = setTimeout(() => this.proc.kill('SIGKILL'), STOP_GRACE_MS);
        await this.exitedPromise;
        clearTimeout(timer);
      }
      for (const file of [this.files.config, this.files.key, this.files.pid]) {
        if (file) fs.rmSync(file, { force: true });
      }
      this.emit('close');
    })();
    return this.closing;
  }

  /** The last lines of coturn's output, for error messages. */
  logTail(lines = LOG_TAIL_LINES): string {
    return logTailOf(this.files.log, lines);
  }

  private waitReady(prepared: PreparedTurnRelay): Promise<void> {
    return waitTurnRelayReady(prepared, {
      log: this.files.log,
      gone: () => {
        if (this.spawnError) {
          const file = prepared.command.file;
          return this.spawnError.code === 'ENOENT'
            ? `cannot run "${file}": coturn is not installed (Debian: apt-get install coturn)`
            : `cannot run "${file}": ${this.spawnError.message}`;
        }
        return this.exited ? 'exited during start' : undefined;
      },
    });
  }
}

/**
 * A relay's files written and its command ready, not started: `TurnRelay.start` runs it as its own
 * child, the local stack under its process supervisor (so chaos can kill and freeze it like the
 * region's other processes, and a crash is restarted).
 */
export interface PreparedTurnRelay {
  readonly region: string;
  readonly endpoint: LocalTurnEndpoint;
  readonly files: TurnRelayFiles;
  /** coturn with its config file. */
  readonly command: { readonly file: string; readonly args: readonly string[] };
  readonly startTimeoutMs: number;
  /** Deletes the files that hold secrets (config, key) and the pid file; for when the relay is stopped. */
  removeSecrets(): void;
}

/** Checks the options and the ports, writes the config, certificate and key (0600 in a 0700 directory). */
export async function prepareTurnRelay(options: TurnRelayOptions): Promise<PreparedTurnRelay> {
  const s = settingsOf(options);
  await checkPortsFree(s);
  fs.mkdirSync(s.stateDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(s.stateDir, 0o700);
  const files: TurnRelayFiles = {
    config: path.join(s.stateDir, 'turnserver.conf'),
    log: path.join(s.stateDir, 'turnserver.log'),
    pid: path.join(s.stateDir, 'turnserver.pid'),
    database: path.join(s.stateDir, 'turndb'),
    cert: s.tlsPort === undefined ? undefined : path.join(s.stateDir, 'cert.pem'),
    key: s.tlsPort === undefined ? undefined : path.join(s.stateDir, 'key.pem'),
  };
  if (files.cert && files.key) await makeCertificate(s, files.cert, files.key);
  fs.writeFileSync(files.config, coturnConfig(s, files), { mode: 0o600 });
  fs.chmodSync(files.config, 0o600);
  return {
    region: s.region,
    endpoint: { host: s.address, port: s.port, tlsPort: s.tlsPort },
    files,
    command: { file: s.turnserverPath, args: ['-c', files.config] },
    startTimeoutMs: s.startTimeoutMs,
    removeSecrets: () => {
      for (const file of [files.config, files.key, files.pid]) if (file) fs.rmSync(file, { force: true });
    },
  };
}

/**
 * Waits until a started relay answers a STUN Binding over UDP and accepts TCP (and TLS) connections,
 * then checks its log (`log`, coturn's output) for configuration it skipped. `gone` says why the
 * process is no longer there, if it is not.
 */
export async function waitTurnRelayReady(
  prepared: Pick<PreparedTurnRelay, 'region' | 'endpoint' | 'startTimeoutMs'>,
  opts: {
    readonly log: string;
    readonly gone: () => string | undefined;
    /** Where this start's output begins in `log` (a log appended to across runs). @default 0 */
    readonly logOffset?: number;
  },
): Promise<void> {
  const { region, endpoint, startTimeoutMs } = prepared;
  const tail = () => logTailOf(opts.log, LOG_TAIL_LINES);
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    const gone = opts.gone();
    if (gone) {
      throw new TurnRelayError(
        gone.startsWith('cannot run')
          ? gone
          : `the ${region} TURN relay (coturn) ${gone}; its log (${opts.log}):\n${tail()}`,
      );
    }
    const ready =
      (await stunBinding(endpoint.host, endpoint.port, PROBE_TIMEOUT_MS)) &&
      (await tcpAccepts(endpoint.host, endpoint.port)) &&
      (endpoint.tlsPort === undefined || (await tcpAccepts(endpoint.host, endpoint.tlsPort)));
    if (ready) break;
    if (Date.now() > deadline) {
      throw new TurnRelayError(
        `the ${region} TURN relay did not answer on ${endpoint.host}:${endpoint.port} within ${startTimeoutMs} ms; ` +
          `its log (${opts.log}):\n${tail()}`,
      );
    }
    await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
  }
  // coturn logs a line it could not use and carries on without it: a peer rule it skipped would be a
  // hole, so such a start is a failed start.
  const log = fs
    .readFileSync(opts.log)
    .subarray(opts.logOffset ?? 0)
    .toString('utf8');
  const bad = log.split('\n').filter((line) => COTURN_CONFIG_ERRORS.test(line));
  if (bad.length > 0) {
    throw new TurnRelayError(
      `the ${region} TURN relay skipped configuration it was given:\n${bad.join('\n')}`,
    );
  }
}

function logTailOf(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The coturn configuration of a local relay (its settings, the shared hardening and peer policy). */
function coturnConfig(s: Settings, files: TurnRelayFiles): string {
  const lines = [
    `# coturn for the local ${s.region} region, written by runtime/local/TurnRelay.ts. Holds the TURN`,
    '# secret: this user only; deleted when the relay stops.',
    `listening-ip=${s.address}`,
    `relay-ip=${s.address}`,
    `listening-port=${s.port}`,
    ...(s.tlsPort === undefined
      ? ['no-tls']
      : [`tls-listening-port=${s.tlsPort}`, `cert=${files.cert}`, `pkey=${files.key}`]),
    `min-port=${s.relayPortMin}`,
    `max-port=${s.relayPortMax}`,
    `realm=${s.realm}`,
    ...s.secrets.map((secret) => `static-auth-secret=${secret}`),
    ...COTURN_HARDENING,
    ...coturnPeerPolicy(s.allowedPeers),
    // To stdout, which the relay's log file receives; the pid and the database in the state directory so
    // no path needs root.
    'log-file=stdout',
    `pidfile=${files.pid}`,
    `userdb=${files.database}`,
  ];
  return `${lines.join('\n')}\n`;
}

function settingsOf(o: TurnRelayOptions): Settings {
  const fail = (field: string, message: string): never => {
    throw new TurnRelayError(`TurnRelay ${field}: ${message}`);
  };
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(o.address)) {
    fail('address', `"${o.address}" is not a loopback IPv4 address; use the region's 127.x.y.z address`);
  }
  const port = o.port ?? TURN_PORT;
  const tlsPort = o.tls === false ? undefined : (o.tlsPort ?? TURN_TLS_PORT);
  const relayPortMin = o.relayPortMin ?? LOCAL_RELAY_PORT_MIN;
  const relayPortMax = o.relayPortMax ?? LOCAL_RELAY_PORT_MAX;
  for (const [field, value] of [
    ['port', port],
    ['tlsPort', tlsPort],
    ['relayPortMin', relayPortMin],
    ['relayPortMax', relayPortMax],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1024 || value > 65535)) {
      fail(field, `${value} is not a port from 1024 to 65535 (the relay needs no privileges)`);
    }
  }
  if (relayPortMin > relayPortMax)
    fail('relayPortMin', `${relayPortMin} exceeds relayPortMax ${relayPortMax}`);
  for (const p of [port, tlsPort]) {
    if (p !== undefined && p >= relayPortMin && p <= relayPortMax) {
      fail(
        'relayPortMin',
        `the relay range ${relayPortMin}-${relayPortMax} contains the listening port ${p}`,
      );
    }
  }
  if (tlsPort === port) fail('tlsPort', `${tlsPort} is also the UDP/TCP port; use another`);
  if (!/^[A-Za-z0-9.-]{1,253}$/.test(o.realm)) fail('realm', `"${o.realm}" is not a DNS-style realm`);
  if (o.secrets.length === 0)
    fail('secrets', 'is empty; give the shared secret the join answers are signed with');
  try {
    o.secrets.forEach((secret, i) => checkTurnSecret(secret, `secrets[${i}]`));
    coturnPeerPolicy(o.allowedPeers);
  } catch (err) {
    if (err instanceof TurnPolicyError) fail(err.field, err.message.slice(err.field.length + 2));
    throw err;
  }
  return {
    region: o.region,
    address: o.address,
    port,
    tlsPort,
    relayPortMin,
    relayPortMax,
    realm: o.realm,
    secrets: o.secrets,
    allowedPeers: o.allowedPeers,
    stateDir: path.resolve(o.stateDir),
    turnserverPath: o.turnserverPath ?? 'turnserver',
    opensslPath: o.opensslPath ?? 'openssl',
    startTimeoutMs: o.startTimeoutMs ?? START_TIMEOUT_MS,
  };
}

/**
 * coturn binds its listeners with SO_REUSEPORT, so a second relay on a taken port starts without a word
 * and shares the traffic. Binding first without it turns that into a clear error.
 */
async function checkPortsFree(s: Settings): Promise<void> {
  const checks: [string, number][] = [
    ['udp', s.port],
    ['tcp', s.port],
    ...(s.tlsPort === undefined ? [] : ([['tcp', s.tlsPort]] as [string, number][])),
  ];
  for (const [protocol, port] of checks) {
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      if (protocol === 'udp') {
        const socket = dgram.createSocket('udp4');
        socket.once('error', (err) => {
          socket.close();
          resolve(err);
        });
        socket.bind(port, s.address, () => socket.close(() => resolve(null)));
      } else {
        const server = net.createServer();
        server.once('error', (err) => resolve(err));
        server.listen(port, s.address, () => server.close(() => resolve(null)));
      }
    });
    if (error) {
      throw new TurnRelayError(
        error.code === 'EADDRINUSE'
          ? `${s.address}:${port}/${protocol} is in use: another TURN relay or process holds it; stop it or ` +
              `give the ${s.region} relay another port`
          : `cannot bind ${s.address}:${port}/${protocol}: ${error.message}`,
      );
    }
  }
}

/** A self-signed P-256 certificate for the relay's address, made by openssl (Node cannot issue one). */
async function makeCertificate(s: Settings, certFile: string, keyFile: string): Promise<void> {
  const args = [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    String(CERT_DAYS),
    '-subj',
    `/CN=${s.address}`,
    '-addext',
    `subjectAltName=IP:${s.address}`,
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ];
  await new Promise<void>((resolve, reject) => {
    // openssl creates the key file with the umask's mode; the chmod below narrows it either way.
    execFile(s.opensslPath, args, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const code = (err as NodeJS.ErrnoException).code;
      reject(
        new TurnRelayError(
          code === 'ENOENT'
            ? `cannot run "${s.opensslPath}" to make the TLS certificate: install openssl (Debian: apt-get ` +
                'install openssl), or start the relay with tls: false'
            : `openssl could not make the TLS certificate: ${stderr.trim() || err.message}`,
        ),
      );
    });
  });
  fs.chmodSync(keyFile, 0o600);
}

/**
 * One STUN Binding request (RFC 5389) over UDP; true when a success answer with our transaction id
 * arrives. Needs no credential: it shows the relay's UDP listener is up and serving.
 */
export async function stunBinding(address: string, port: number, timeoutMs: number): Promise<boolean> {
  const transactionId = randomBytes(12);
  const request = Buffer.alloc(20);
  request.writeUInt16BE(0x0001, 0); // Binding request
  request.writeUInt16BE(0, 2); // no attributes
  request.writeUInt32BE(0x2112a442, 4); // magic cookie
  transactionId.copy(request, 8);
  const socket = dgram.createSocket('udp4');
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      socket.on('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
      socket.on('message', (msg) => {
        if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(transactionId)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      socket.send(request, port, address);
    });
  } finally {
    socket.close();
  }
}

function tcpAccepts(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
