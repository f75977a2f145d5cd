/**
 * Child processes of a benchmark and what the kernel says they cost. Each measured part (LB, DynamoDB,
 * echo server, HTTP floor) runs in a process of its own so its CPU time and RSS are its own, read from
 * /proc rather than from inside the process (nothing in the measured process changes for the bench).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { round } from '../report';

export const ROOT = path.resolve(__dirname, '..', '..', '..');

/** Kernel clock ticks per second for /proc/<pid>/stat times; 100 on every Linux build we run on. */
const CLOCK_TICKS_PER_S = 100;
/** How long a child may take to stop after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 10_000;
/** Output kept per child for error messages: the tail is what explains a crash. */
const OUTPUT_TAIL_CHARS = 8_000;

export interface BenchChild {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<number | null>;
  /** The last few KB of stderr (and stdout when kept), for error messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** Environment on top of PATH and HOME (nothing else of the bench's environment leaks in). */
  readonly env?: Record<string, string>;
  /** Keep stdout (false sends it to /dev/null: per-request logs must not cost the bench a pipe). */
  readonly keepStdout?: boolean;
  /** An IPC channel to the child (process.send). */
  readonly ipc?: boolean;
}

/** Runs a TypeScript entry point under tsx, as the local supervisor does. */
export function spawnTs(name: string, entry: string, opts: SpawnOptions = {}): BenchChild {
  return spawnNode(name, ['--import', 'tsx', entry], opts);
}

/** Runs `node <args>` (this very node binary). */
export function spawnNode(name: string, args: readonly string[], opts: SpawnOptions = {}): BenchChild {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...opts.env,
    },
    stdio: ['ignore', opts.keepStdout ? 'pipe' : 'ignore', 'pipe', ...(opts.ipc ? (['ipc'] as const) : [])],
  });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  if (child.pid === undefined) throw new Error(`could not start ${name} (node ${args.join(' ')})`);
  return {
    name,
    child,
    pid: child.pid,
    exited,
    output: () => tail,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Fails with the child's output when it exits before `ready` settles. */
export async function untilReady<T>(child: BenchChild, ready: Promise<T>): Promise<T> {
  const died = child.exited.then((code) => {
    throw new Error(`${child.name} exited with ${code} before it was ready:\n${child.output()}`);
  });
  return Promise.race([ready, died]);
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, host, resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Polls `url` until it answers 2xx; bounded by `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * User + system CPU time of a process, ms, from the fields after the command name of /proc/<pid>/stat
 * (the name is in parentheses and may itself hold spaces and parentheses, hence the lastIndexOf).
 */
export function parseProcStatCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields from "state" (3rd of the file) on: utime is the 14th of the file, stime the 15th.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unreadable /proc stat: ${stat}`);
  return ((utime + stime) * 1000) / CLOCK_TICKS_PER_S;
}

/** Resident set size in bytes from /proc/<pid>/status (`VmRSS:  12345 kB`). */
export function parseVmRssBytes(status: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error('no VmRSS line in /proc status');
  return Number(match[1]) * 1024;
}

export function cpuMsOf(pid: number): number {
  return parseProcStatCpuMs(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

export function rssBytesOf(pid: number): number {
  return parseVmRssBytes(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
}

/** CPU time of `pid` spent while `work` runs, with the wall time, so callers get both ms and share. */
export async function measureCpu<T>(
  pid: number,
  work: () => Promise<T>,
): Promise<{ result: T; cpuMs: number; wallMs: number }> {
  const cpuBefore = cpuMsOf(pid);
  const t0 = performance.now();
  const result = await work();
  return { result, cpuMs: cpuMsOf(pid) - cpuBefore, wallMs: performance.now() - t0 };
}

/** The 1-minute load average and the core count: a busy machine is reported next to the figures. */
export function machineLoad(): { loadAvg1m: number; cpus: number } {
  return { loadAvg1m: round(os.loadavg()[0]!, 2), cpus: os.cpus().length };
}

/** Stops every child, newest first, whatever happened; never throws (it runs in `finally`). */
export async function stopAll(children: readonly (BenchChild | undefined)[]): Promise<void> {
  for (const c of [...children].reverse()) {
    if (c) await c.stop().catch(() => undefined);
  }
}

/** Waits for the child's `{ type: 'ready', ... }` IPC message (or its early exit). */
export function ipcReady<T>(proc: BenchChild): Promise<T> {
  return untilReady(proc, ipcAnswer<T>(proc, 'ready'));
}

/** Sends `{ type }` and resolves with the child's next message of the same type. */
export function ipcAsk<T>(proc: BenchChild, type: string): Promise<T> {
  const answer = untilReady(proc, ipcAnswer<T>(proc, type));
  proc.child.send({ type });
  return answer;
}

function ipcAnswer<T>(proc: BenchChild, type: string): Promise<T> {
  return new Promise<T>((resolve) => {
    const onMessage = (msg: { type?: string }) => {
      if (msg.type !== type) return;
      proc.child.off('message', onMessage);
      resolve(msg as T);
    };
    proc.child.on('message', onMessage);
  });
}
