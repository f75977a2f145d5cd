/**
 * Child process: a local stack for a chaos run, a benchmark or a test that did not find one running
 * (scripts/chaos/local-target.ts starts it). The stack's emulators (DynamoDB replicas, the DNS zones and
 * their health checks, the control API) then run on an event loop of their own, not on the one that
 * times the clients' frames: a burst of placements when a region dies would otherwise show up as gaps
 * in the survivors' media that no client saw.
 *
 * IPC: ← { type: 'start', options } → { type: 'log', line }*, then { type: 'ready', state } or
 * { type: 'failed', message }. It stops the stack and exits on SIGTERM or SIGINT, or when the parent's
 * channel closes (the parent ended, however), so no region outlives the run that started it.
 */
import type { DeploymentConfig } from '../../lib/config';
import { startLocalStack, type LocalStack } from '../../runtime/local/stack';

export interface StackProcessOptions {
  readonly config: DeploymentConfig;
  readonly regionCount?: number;
  readonly mediaPerRegion?: number;
  readonly stateDir?: string;
  readonly healthyWithinMs: number;
}

let stack: LocalStack | undefined;
let stopping = false;

async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await stack?.stop().catch(() => undefined);
  }
  process.exit(code);
}

async function start(options: StackProcessOptions): Promise<void> {
  stack = await startLocalStack({
    config: options.config,
    regionCount: options.regionCount,
    mediaPerRegion: options.mediaPerRegion,
    stateDir: options.stateDir,
    log: (line) => process.send?.({ type: 'log', line }),
  });
  await stack.waitHealthy(options.healthyWithinMs);
  process.send?.({ type: 'ready', state: stack.state() });
}

if (require.main === module) {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void stop(0));
  process.once('disconnect', () => void stop(0));
  process.once('message', (msg: { type?: string; options?: StackProcessOptions }) => {
    if (msg.type !== 'start' || !msg.options) return;
    start(msg.options).catch((err: unknown) => {
      process.send?.({ type: 'failed', message: (err as Error).message });
      void stop(1);
    });
  });
  process.send?.({ type: 'listening' });
}
