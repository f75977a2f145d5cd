/**
 * The herd bench's survivor side, in a process of its own: the survivor regions' media server
 * stand-ins and the survivors' own calls (joined before the herd, pinged at the SDK's period through
 * the LBs while it runs). The bench process runs the herd's thousands of clients; a burst of their work
 * there held that process's event loop for up to 1.8 s, and a pong timed in the same loop counted that
 * stall against the LBs. As on a real network, the survivors and the media servers now keep their own
 * time.
 *
 * Driven over IPC by `SurvivorSide` (scripts/bench/herd.ts forks this file with tsx's loader).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import * as path from 'node:path';
import type { nodePlatform } from '../../../runtime/client/nodePlatform';
import type { SignalingChannel } from '../../../runtime/client/SignalingChannel';
import { connectClient, startSignalingStandIn, TIMEOUTS, type JoinStats } from './herdClient';
import { sleep } from './processes';

/** What made a survivor session count as affected. */
export type AffectedBy = 'socket_lost' | 'slow_pong' | 'ping_failed';

export interface SurvivorCallsResult {
  readonly pingRtts: number[];
  readonly affectedBy: Record<AffectedBy, number>;
}

type Request =
  | { readonly type: 'standIns'; readonly count: number }
  | {
      readonly type: 'join';
      readonly calls: ReadonlyArray<{ lbUrl: string; room: string; token: string }>;
    }
  | { readonly type: 'stop' };

type Reply =
  | { readonly type: 'standIns'; readonly urls: string[] }
  | { readonly type: 'joined'; readonly sessions: number }
  | ({ readonly type: 'stopped' } & SurvivorCallsResult)
  | { readonly type: 'error'; readonly message: string };

/** The bench's handle on the survivor side's process. */
export class SurvivorSide {
  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<SurvivorSide> {
    const child = fork(__filename, [], {
      execArgv: ['--import', 'tsx'],
      cwd: path.resolve(__dirname, '../../..'),
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return new SurvivorSide(child);
  }

  /** Starts `count` media server stand-ins; resolves with their signaling URLs. */
  async standIns(count: number): Promise<string[]> {
    return (await this.ask({ type: 'standIns', count }, 'standIns')).urls;
  }

  /** Joins the survivors' calls (one client each) and starts pinging them; resolves with their number. */
  async join(calls: ReadonlyArray<{ lbUrl: string; room: string; token: string }>): Promise<number> {
    return (await this.ask({ type: 'join', calls }, 'joined')).sessions;
  }

  /** Stops the pings, once those in flight had their pong timeout's worth to come back. */
  async stop(): Promise<SurvivorCallsResult> {
    const { pingRtts, affectedBy } = await this.ask({ type: 'stop' }, 'stopped');
    return { pingRtts, affectedBy };
  }

  /** Ends the process: its calls and stand-ins with it. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }

  private ask<T extends Reply['type']>(request: Request, expect: T): Promise<Extract<Reply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the survivor side exited (${code})`));
      this.child.once('exit', onExit);
      this.child.once('message', (reply: Reply) => {
        this.child.off('exit', onExit);
        if (reply.type === expect) resolve(reply as Extract<Reply, { type: T }>);
        else reject(new Error(reply.type === 'error' ? reply.message : `unexpected reply ${reply.type}`));
      });
      this.child.send(request);
    });
  }
}

/** The child process: answers one request at a time. */
function serve(): void {
  const lifetime = new AbortController();
  setMaxListeners(0, lifetime.signal);
  const platforms: Array<ReturnType<typeof nodePlatform>> = [];
  const channels: SignalingChannel[] = [];
  const stats: JoinStats = { latenciesMs: [], answers: {} };
  const pingRtts: number[] = [];
  // Each affected session counts once, by the first thing that went wrong for it.
  const affected = new Map<number, AffectedBy>();
  const affect = (i: number, by: AffectedBy) => {
    if (!affected.has(i)) affected.set(i, by);
  };
  let pinger: NodeJS.Timeout | undefined;

  const handle = async (request: Request): Promise<Reply> => {
    switch (request.type) {
      case 'standIns': {
        const standIns = await Promise.all(Array.from({ length: request.count }, startSignalingStandIn));
        return { type: 'standIns', urls: standIns.map((s) => s.url) };
      }
      case 'join': {
        const sessions = await Promise.all(
          request.calls.map((call, index) =>
            connectClient({ ...call, index, platforms, stats, signal: lifetime.signal }),
          ),
        );
        channels.push(...sessions);
        for (const [i, ch] of sessions.entries()) ch.on('lost', () => affect(i, 'socket_lost'));
        pinger = setInterval(() => {
          for (const [i, ch] of sessions.entries()) {
            if (!ch.isOpen) continue;
            const sent = performance.now();
            ch.request('ping', {}).then(
              () => {
                const rtt = performance.now() - sent;
                pingRtts.push(rtt);
                if (rtt > TIMEOUTS.pongTimeoutMs) affect(i, 'slow_pong');
              },
              () => affect(i, 'ping_failed'),
            );
          }
        }, TIMEOUTS.pingMs);
        return { type: 'joined', sessions: sessions.length };
      }
      case 'stop': {
        await sleep(2 * TIMEOUTS.pingMs);
        clearInterval(pinger);
        const affectedBy: Record<AffectedBy, number> = { socket_lost: 0, slow_pong: 0, ping_failed: 0 };
        for (const reason of affected.values()) affectedBy[reason]++;
        return { type: 'stopped', pingRtts, affectedBy };
      }
    }
  };

  process.on('message', (request: Request) => {
    handle(request).then(
      (reply) => process.send!(reply),
      (err: unknown) => process.send!({ type: 'error', message: (err as Error).message }),
    );
  });
  process.once('SIGTERM', () => {
    lifetime.abort(new Error('bench over'));
    clearInterval(pinger);
    for (const ch of channels) ch.close();
    for (const p of platforms) p.close();
    process.exit(0);
  });
  // The bench went away without a word: so does this process.
  process.once('disconnect', () => process.exit(0));
}

if (require.main === module) serve();
