/**
 * Runs the local stack's child processes (LB services, media servers, TURN relays) and keeps them up.
 *
 * Restart policy: a child that exits on its own is reported and restarted with exponential backoff
 * (capped), so a crash loop cannot spin the machine. A child that a chaos run killed or froze on purpose
 * is "held": it stays down until the chaos run releases it (rollback), because restarting it would
 * erase the failure being measured.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';

const RESTART_BACKOFF_BASE_MS = 500;
const RESTART_BACKOFF_CAP_MS = 10_000;
/** A child that stayed up this long is healthy again: its next crash starts the backoff over. */
const STABLE_AFTER_MS = 30_000;
const STOP_GRACE_MS = 5_000;

export type ChildRole = 'lb' | 'media' | 'turn';
export type ChildState = 'starting' | 'running' | 'restarting' | 'held' | 'stopped';

export interface ChildSpec {
  /** Unique name, e.g. `us-east-1-lb` or `us-east-1-m0` (the media server id). */
  readonly name: string;
  readonly region: string;
  readonly role: ChildRole;
  /**
   * What runs: a TypeScript entry point, run with the tsx loader in a single node process, or a program
   * run as is (coturn). Either way the child is that one process, so a chaos signal reaches it directly.
   */
  readonly entry: string | { readonly file: string; readonly args: readonly string[] };
  readonly env: Record<string, string>;
}

export interface ChildStatus {
  readonly name: string;
  readonly region: string;
  readonly role: ChildRole;
  readonly state: ChildState;
  readonly pid: number | null;
  readonly restarts: number;
  readonly frozen: boolean;
  readonly lastExit: { code: number | null; signal: string | null; at: number } | null;
}

interface Child {
  readonly spec: ChildSpec;
  proc: ChildProcess | null;
  state: ChildState;
  restarts: number;
  consecutiveCrashes: number;
  startedAt: number;
  frozen: boolean;
  /** The pids a freeze stopped (the process and its descendants), resumed together. */
  frozenTree?: number[];
  lastExit: ChildStatus['lastExit'];
  restartTimer: NodeJS.Timeout | null;
}

export interface SupervisorEvents {
  exit: [status: ChildStatus, expected: boolean];
  restart: [status: ChildStatus, delayMs: number];
}

export class ProcessSupervisor extends EventEmitter<SupervisorEvents> {
  private readonly children = new Map<string, Child>();
  private stopping = false;

  constructor(private readonly logDir: string) {
    super();
    // Logs carry room names, identities and addresses: this user's only.
    fs.mkdirSync(logDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(logDir, 0o700);
  }

  add(spec: ChildSpec): void {
    if (this.children.has(spec.name)) throw new Error(`child "${spec.name}" already exists`);
    const child: Child = {
      spec,
      proc: null,
      state: 'starting',
      restarts: 0,
      consecutiveCrashes: 0,
      startedAt: 0,
      frozen: false,
      lastExit: null,
      restartTimer: null,
    };
    this.children.set(spec.name, child);
    this.launch(child);
  }

  status(): ChildStatus[] {
    return [...this.children.values()].map((c) => this.statusOf(c));
  }

  select(filter: { region?: string; role?: ChildRole; name?: string }): string[] {
    return [...this.children.values()]
      .filter(
        (c) =>
          (!filter.region || c.spec.region === filter.region) &&
          (!filter.role || c.spec.role === filter.role) &&
          (!filter.name || c.spec.name === filter.name),
      )
      .map((c) => c.spec.name);
  }

  /** Chaos: SIGKILL and keep it down until `release`. */
  kill(name: string): void {
    const child = this.get(name);
    this.hold(child);
    child.proc?.kill('SIGKILL');
  }

  /**
   * Chaos: SIGSTOP, so the process keeps its sockets open but answers nothing (a blackhole). Its
   * descendants too: a media server's mediasoup workers are its children, and a region whose workers
   * kept forwarding media would not be blackholed at all.
   */
  freeze(name: string): void {
    const child = this.get(name);
    this.hold(child);
    if (child.proc?.pid && !child.frozen) {
      const tree = [child.proc.pid, ...descendantsOf(child.proc.pid)];
      child.frozenTree = tree;
      for (const pid of tree) signalQuietly(pid, 'SIGSTOP');
      child.frozen = true;
    }
  }

  /** Rollback: resume a frozen child, or start a killed one again. */
  release(name: string): void {
    const child = this.get(name);
    if (child.frozen && child.proc) {
      for (const pid of child.frozenTree ?? [child.proc.pid!]) signalQuietly(pid, 'SIGCONT');
      child.frozenTree = undefined;
      child.frozen = false;
      child.state = 'running';
      return;
    }
    if (child.state === 'held') {
      child.consecutiveCrashes = 0;
      this.launch(child);
    }
  }

  /** Graceful stop of one child (SIGTERM, SIGKILL after a grace period); it is not restarted. */
  async stopChild(name: string): Promise<void> {
    const child = this.get(name);
    this.hold(child);
    await this.terminate(child);
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.children.values()].map((c) => this.terminate(c)));
    for (const c of this.children.values()) c.state = 'stopped';
  }

  private get(name: string): Child {
    const child = this.children.get(name);
    if (!child) throw new Error(`no child named "${name}"; known: ${[...this.children.keys()].join(', ')}`);
    return child;
  }

  private hold(child: Child): void {
    child.state = 'held';
    if (child.restartTimer) clearTimeout(child.restartTimer);
    child.restartTimer = null;
  }

  private statusOf(c: Child): ChildStatus {
    return {
      name: c.spec.name,
      region: c.spec.region,
      role: c.spec.role,
      state: c.state,
      pid: c.proc?.pid ?? null,
      restarts: c.restarts,
      frozen: c.frozen,
      lastExit: c.lastExit,
    };
  }

  private launch(child: Child): void {
    const log = fs.openSync(path.join(this.logDir, `${child.spec.name}.log`), 'a', 0o600);
    const { entry } = child.spec;
    const [file, args] =
      typeof entry === 'string'
        ? [process.execPath, ['--import', 'tsx', entry]]
        : [entry.file, [...entry.args]];
    const proc = spawn(file, args, {
      env: { ...process.env, ...child.spec.env },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    child.proc = proc;
    child.state = 'running';
    child.frozen = false;
    child.startedAt = Date.now();
    proc.once('exit', (code, signal) => this.onExit(child, proc, code, signal));
    // A program that cannot be started (not installed) never exits; count it as a crash, logged.
    proc.once('error', (err) => {
      fs.appendFileSync(path.join(this.logDir, `${child.spec.name}.log`), `cannot start: ${err.message}\n`);
      this.onExit(child, proc, null, null);
    });
  }

  private onExit(child: Child, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child.proc !== proc) return;
    child.proc = null;
    child.frozen = false;
    child.lastExit = { code, signal, at: Date.now() };
    const expected = this.stopping || child.state === 'held' || child.state === 'stopped';
    this.emit('exit', this.statusOf(child), expected);
    if (expected) return;
    if (Date.now() - child.startedAt > STABLE_AFTER_MS) child.consecutiveCrashes = 0;
    const delayMs = Math.min(RESTART_BACKOFF_CAP_MS, RESTART_BACKOFF_BASE_MS * 2 ** child.consecutiveCrashes);
    child.consecutiveCrashes += 1;
    child.restarts += 1;
    child.state = 'restarting';
    this.emit('restart', this.statusOf(child), delayMs);
    child.restartTimer = setTimeout(() => {
      child.restartTimer = null;
      if (child.state === 'restarting' && !this.stopping) this.launch(child);
    }, delayMs);
  }

  private async terminate(child: Child): Promise<void> {
    if (child.restartTimer) clearTimeout(child.restartTimer);
    child.restartTimer = null;
    const proc = child.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    if (child.frozen) proc.kill('SIGCONT');
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
}

/** Every descendant of `pid` (children first), read from /proc; empty where /proc is not there. */
function descendantsOf(pid: number): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  const parentOf = new Map<number, number>();
  for (const entry of entries) {
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: the ppid follows the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      // The process exited while we read.
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of parentOf) {
      if (ppid === parent) {
        out.push(child);
        queue.push(child);
      }
    }
  }
  return out;
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
}
