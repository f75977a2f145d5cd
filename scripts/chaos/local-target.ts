/**
 * The chaos run's handle on the local stack: attach to a running `npm start` through
 * `.local/state.json` and its control API, or start a stack in a child process when none runs
 * (stackProcess.ts: the emulators get an event loop of their own, away from the clients it times).
 *
 * Faults go through the control API (what a person could do from another terminal), data checks read
 * every replica directly through the AWS SDK, and evacuation is written through a surviving region's
 * replica, the data-plane path a real operator takes.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readDeploymentConfig, type DeploymentConfig } from '../../lib/config';
import { type KeySet, parseKeySet, signJoinToken } from '../../runtime/protocol/tokens';
import { LOCAL_CREDENTIALS, localReplicaStore } from '../../runtime/local/replicas';
import { stateFilePath, type LocalStackState } from '../../runtime/local/stateFile';
import type { Store } from '../../runtime/store';
import type { StackProcessOptions } from './stackProcess';

/** A stack that this process started: stopping it stops every region. */
interface OwnedStack {
  stop(): Promise<void>;
}

/**
 * kill / blackhole / evacuate fail one region; dns-outage fails the primary DNS zone instead (every
 * region stays up), the outage the backup name family exists for.
 */
export type FaultMode = 'kill' | 'blackhole' | 'evacuate' | 'dns-outage';

export interface Injection {
  /** Epoch ms when the fault took effect. */
  readonly at: number;
  readonly actions: readonly string[];
}

export interface ReplicaItem {
  readonly key: string;
  readonly item: Record<string, unknown>;
}

export class LocalTarget {
  private readonly key: KeySet;
  private readonly stores = new Map<string, Store>();

  private constructor(
    readonly state: LocalStackState,
    /** Set when this process started the stack (and so must stop it). */
    private readonly owned: OwnedStack | undefined,
  ) {
    this.key = parseKeySet(state.joinTokenKeys);
  }

  /** Attaches to the running stack, or starts one (`regionCount` regions) when none answers. */
  static async attachOrStart(opts: {
    config?: DeploymentConfig;
    stateDir?: string;
    regionCount?: number;
    mediaPerRegion?: number;
    healthIntervalSeconds?: number;
    log: (line: string) => void;
  }): Promise<LocalTarget> {
    const file = stateFilePath(opts.stateDir);
    if (fs.existsSync(file)) {
      const state = JSON.parse(fs.readFileSync(file, 'utf8')) as LocalStackState;
      if (await answers(`${state.controlUrl}/api/state`)) {
        opts.log(`attached to the running local stack (pid ${state.pid}, ${state.regions.length} regions)`);
        return new LocalTarget(state, undefined);
      }
      opts.log(`${file} is stale (its control API does not answer); starting a new stack`);
    }
    const base = opts.config ?? readDeploymentConfig();
    const config: DeploymentConfig = {
      ...base,
      local: {
        ...base.local,
        healthCheckIntervalSeconds: opts.healthIntervalSeconds ?? base.local.healthCheckIntervalSeconds,
      },
    };
    opts.log('no local stack runs: starting one in a child process');
    const { state, stop } = await startStackProcess(
      {
        config,
        regionCount: opts.regionCount,
        mediaPerRegion: opts.mediaPerRegion,
        stateDir: opts.stateDir,
        healthyWithinMs: 90_000,
      },
      (l) => opts.log(`  ${l}`),
    );
    return new LocalTarget(state, { stop });
  }

  get regionNames(): string[] {
    return this.state.regions.map((r) => r.name);
  }

  region(name: string) {
    const r = this.state.regions.find((x) => x.name === name);
    if (!r)
      throw new Error(`region "${name}" is not part of the local stack (${this.regionNames.join(', ')})`);
    return r;
  }

  token(room: string, sub: string): Promise<string> {
    return signJoinToken(this.key, { sub, room, ttlSeconds: 3600 });
  }

  storeFor(region: string): Store {
    let store = this.stores.get(region);
    if (!store) {
      store = localReplicaStore(region, this.state.tableName, this.region(region).dynamoEndpoint);
      this.stores.set(region, store);
    }
    return store;
  }

  /** Whether every region's LB answers /health 200 and DNS routes to it. */
  async steadyState(): Promise<{ ok: boolean; detail: string[] }> {
    const detail: string[] = [];
    const control = await getJson<{
      regions: { name: string; dnsHealthy: boolean; status: string }[];
      dnsZones?: Record<string, { serving: boolean }>;
    }>(`${this.state.controlUrl}/api/state`);
    for (const [zone, z] of Object.entries(control?.dnsZones ?? {}))
      if (!z.serving) detail.push(`the ${zone} DNS zone does not answer`);
    for (const r of this.state.regions) {
      const health = await fetch(`${r.lbUrl}/health`, { signal: AbortSignal.timeout(2_000) }).then(
        (res) => res.status,
        () => 0,
      );
      const view = control?.regions.find((x) => x.name === r.name);
      if (health !== 200) detail.push(`${r.name}: LB /health answered ${health || 'nothing'}`);
      if (!view?.dnsHealthy) detail.push(`${r.name}: unhealthy in the DNS emulator`);
      if (view && view.status !== 'active') detail.push(`${r.name}: region status is ${view.status}`);
    }
    return { ok: detail.length === 0, detail };
  }

  async waitSteadyState(timeoutMs: number): Promise<{ ok: boolean; detail: string[] }> {
    const deadline = Date.now() + timeoutMs;
    let last = await this.steadyState();
    while (!last.ok && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      last = await this.steadyState();
    }
    return last;
  }

  /** The DNS emulator's zone changes and recent primary-zone answers since `since` (ms from it). */
  async dnsEmulatorView(since: number): Promise<{
    zoneChanges: { atMs: number; zone: string; failed: boolean }[];
    primaryAnswers: { atMs: number; source: string; name: string }[];
    /** Replies the primary zone's server has sent since it started. */
    primaryReplies: number | null;
  }> {
    const state = await getJson<{
      dnsZones?: { primary?: { answered?: number } };
      dnsHealth?: {
        zoneChanges?: { at: number; zone: string; failed: boolean }[];
        recentAnswers?: { at: number; zone: string; source: string; name: string }[];
      };
    }>(`${this.state.controlUrl}/api/state`);
    const health = state?.dnsHealth;
    return {
      zoneChanges: (health?.zoneChanges ?? []).map((c) => ({
        atMs: c.at - since,
        zone: c.zone,
        failed: c.failed,
      })),
      primaryAnswers: (health?.recentAnswers ?? [])
        .filter((a) => a.zone === 'primary' && a.at >= since)
        .map((a) => ({ atMs: a.at - since, source: a.source, name: a.name })),
      primaryReplies: state?.dnsZones?.primary?.answered ?? null,
    };
  }

  /**
   * Injects the fault. `at` is the moment it took effect, as the stack reports it (epoch ms): the
   * signals sent to the region's processes, the zone switched off, the evacuation written.
   */
  async inject(region: string, mode: FaultMode): Promise<Injection> {
    if (mode === 'dns-outage') {
      const { at } = await postJson(`${this.state.controlUrl}/api/dns/zones/primary/fail`);
      return {
        at,
        actions: [
          `the primary zone ${this.state.domain} drops every query (UDP and TCP); every region stays up`,
        ],
      };
    }
    if (mode === 'evacuate') {
      const via = this.regionNames.find((r) => r !== region);
      if (!via) throw new Error('evacuating needs a second region to write through');
      const at = Date.now();
      await this.storeFor(via).regions.setStatus(region, 'evacuated', 'chaos drill');
      return { at, actions: [`set region ${region} status=evacuated through ${via}'s replica`] };
    }
    const { at } = await postJson(`${this.state.controlUrl}/api/regions/${region}/${mode}`);
    return {
      at,
      actions:
        mode === 'kill'
          ? [
              `SIGKILL ${region}'s LB, media servers and TURN relay`,
              `partition ${region}'s DynamoDB replica and refuse its endpoint`,
            ]
          : [
              `SIGSTOP ${region}'s LB, media servers and TURN relay (sockets stay open)`,
              `partition ${region}'s DynamoDB replica and silence its endpoint`,
            ],
    };
  }

  async rollback(region: string, mode: FaultMode): Promise<string[]> {
    if (mode === 'dns-outage') {
      await postJson(`${this.state.controlUrl}/api/dns/zones/primary/restore`);
      return [`the primary zone ${this.state.domain} answers again`];
    }
    if (mode === 'evacuate') {
      const via = this.regionNames.find((r) => r !== region)!;
      await this.storeFor(via).regions.setStatus(region, 'active', 'chaos rollback');
      return [`set region ${region} status=active through ${via}'s replica`];
    }
    await postJson(`${this.state.controlUrl}/api/regions/${region}/restore`);
    return [
      mode === 'kill' ? `restart ${region}'s processes` : `SIGCONT ${region}'s processes`,
      `heal ${region}'s replica partition`,
    ];
  }

  /** Every item of one replica, keyed by pk|sk. */
  async scanReplica(region: string): Promise<ReplicaItem[]> {
    const client = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        region,
        endpoint: this.region(region).dynamoEndpoint,
        credentials: LOCAL_CREDENTIALS,
        maxAttempts: 2,
      }),
    );
    const items: ReplicaItem[] = [];
    let start: Record<string, unknown> | undefined;
    try {
      do {
        const out = await client.send(
          new ScanCommand({
            TableName: this.state.tableName,
            ExclusiveStartKey: start,
            ConsistentRead: true,
          }),
        );
        for (const item of out.Items ?? [])
          items.push({ key: `${String(item.pk)}|${String(item.sk)}`, item });
        start = out.LastEvaluatedKey;
      } while (start);
    } finally {
      client.destroy();
    }
    return items;
  }

  async close(): Promise<void> {
    for (const s of this.stores.values()) s.close();
    await this.owned?.stop();
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return res.ok;
  } catch {
    return false;
  }
}

async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/** What the control API answers a fault or restore with: at least the moment it acted. */
interface ControlAnswer {
  readonly at: number;
}

async function postJson(url: string): Promise<ControlAnswer> {
  // The control API takes state-changing requests as JSON only (CSRF: see runtime/local/controlServer.ts).
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${JSON.stringify(body)}`);
  const at = (body as { at?: unknown }).at;
  if (typeof at !== 'number')
    throw new Error(`${url} answered without the moment it acted: ${JSON.stringify(body)}`);
  return { at };
}

/** How long a stack process has to stop its regions before it is killed. */
const STACK_STOP_TIMEOUT_MS = 20_000;

/** Starts stackProcess.ts and waits for its stack to be healthy; fails with its reason (its output is this process's). */
async function startStackProcess(
  options: StackProcessOptions,
  log: (line: string) => void,
): Promise<{ state: LocalStackState; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(__dirname, 'stackProcess.ts')],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STACK_STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };
  const ready = new Promise<LocalStackState>((resolve, reject) => {
    child.on('message', (msg: { type: string; line?: string; state?: LocalStackState; message?: string }) => {
      if (msg.type === 'listening') child.send({ type: 'start', options });
      else if (msg.type === 'log') log(msg.line!);
      else if (msg.type === 'ready') resolve(msg.state!);
      else if (msg.type === 'failed') reject(new Error(`the local stack did not start: ${msg.message}`));
    });
    void exited.then((code) =>
      reject(new Error(`the local stack process exited (${code}) before it was ready`)),
    );
  });
  try {
    return { state: await ready, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
