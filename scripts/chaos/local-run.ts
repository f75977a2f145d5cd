/**
 * One chaos experiment against the local stack, in the shape trusted chaos tools use:
 *   1. steady state: every region healthy, N clients joined and alive, rooms in several regions;
 *      if it does not hold, stop without injecting;
 *   2. inject the fault at a recorded time;
 *   3. observe clients, DNS and replication for a bounded window (ends early once everything
 *      recovered and DNS dropped the region);
 *   4. verify data on the surviving replicas;
 *   5. roll back, always (also on failure or Ctrl-C), and wait for steady state again;
 *   6. judge.
 *
 * `dns-outage` follows the same steps with another fault: the primary DNS zone drops every query while
 * every region stays up. Besides the clients connected at the injection, a second wave joins once
 * every cached primary answer has expired, so "joins during the outage" is measured, not assumed.
 */
import { randomBytes } from 'node:crypto';
import { DnsWatch } from './dns-watch';
import { SimulatedClient, type FleetOptions } from './fleet';
import type { FaultMode, LocalTarget, ReplicaItem } from './local-target';
import { survivorMedia, type SurvivorMedia } from './survivors';
import {
  groupDnsOutage,
  groupOutcomes,
  judge,
  judgeDnsOutage,
  type Check,
  type ClientOutcome,
  type DataCheck,
  type DnsOutageGroup,
  type DnsOutageObservation,
  type GroupOutcome,
} from './verdict';

/** After everything recovered, keep watching this long for late failures. */
const SETTLE_AFTER_RECOVERY_MS = 3_000;
const JOIN_BATCH = 6;
const PROGRESS_EVERY_MS = 5_000;
const SCHEDULING_SLACK_MS = 2_000;
/** How long a client joining during a DNS outage may take: a silent zone costs a hedge, not a join. */
const OUTAGE_JOIN_TIMEOUT_MS = 20_000;
/**
 * Queries of the last few seconds before the watch stops are left out of the dns-outage counts, and the
 * rollback waits as long: on a loaded machine a query sent during the outage can sit unread in the
 * (in-process) emulator's socket buffer and be answered once the zone is restored.
 */
const DNS_SETTLE_MS = 3_000;

export interface LocalRunOptions {
  readonly region: string;
  readonly mode: FaultMode;
  readonly clients: number;
  readonly mediaClients: number;
  /** Observation window; null = derived from the DNS bound. */
  readonly durationS: number | null;
  readonly log: (line: string) => void;
  /** Set by Ctrl-C: ends the observation early; rollback still runs. */
  readonly aborted: () => boolean;
}

export interface ChaosReport {
  readonly target: 'local';
  readonly region: string;
  readonly mode: FaultMode;
  readonly runId: string;
  readonly startedAt: string;
  readonly config: {
    clients: number;
    mediaClients: number;
    durationS: number;
    healthCheck: { intervalSeconds: number; failureThreshold: number };
    dnsTtlSeconds: number;
  };
  readonly steadyState: {
    readonly ok: boolean;
    readonly detail: readonly string[];
    readonly roomsByRegion: Record<string, number>;
  };
  readonly injection: {
    /** When the fault took effect, as the stack reports it: time zero of every figure. */
    readonly at: string | null;
    /** How long the control request took until then (not part of any figure). */
    readonly requestMs: number | null;
    readonly actions: readonly string[];
  };
  readonly observation: {
    readonly windowMs: number;
    readonly dnsSamples: number;
    readonly dnsDroppedAfterMs: number | null;
    readonly dnsBoundMs: number;
  };
  readonly groups: readonly GroupOutcome[];
  /** Media between the clients outside the failed region (scripts/chaos/survivors.ts). */
  readonly media?: { readonly survivors: SurvivorMedia };
  /** `dns-outage` only: the groups that mode judges (connected / joined during the outage, by kind). */
  readonly dnsOutage?: { readonly groups: readonly DnsOutageGroup[]; readonly dns: DnsOutageObservation };
  readonly clients: readonly ClientOutcome[];
  readonly data: DataCheck | null;
  readonly rollback: {
    readonly ok: boolean;
    readonly actions: readonly string[];
    readonly steadyStateAfterMs: number | null;
    readonly detail: readonly string[];
  };
  readonly verdict: { readonly pass: boolean; readonly checks: readonly Check[] };
}

export async function runLocalChaos(target: LocalTarget, opts: LocalRunOptions): Promise<ChaosReport> {
  const { log } = opts;
  const failed = target.region(opts.region);
  const bounds = observationBounds(target.state, opts.durationS, opts.mode);
  const header = reportHeader(target.state, opts, bounds.windowMs);

  log(`steady state: checking every region (${target.regionNames.join(', ')})`);
  const steady = await target.waitSteadyState(30_000);
  if (!steady.ok) {
    log(`steady state does not hold: ${steady.detail.join('; ')}; not injecting`);
    return notInjected(header, steady.detail, bounds);
  }

  const dnsOutage = opts.mode === 'dns-outage';
  const fleet = buildFleet(target, header.runId, opts);
  const dnsWatch = watchPrimaryDns(target.state);
  const backupWatch = watchBackupDns(target.state);
  let injectedByMs: number | undefined;
  /** From the control request's start to the fault taking effect (the harness, not the platform). */
  let requestMs: number | null;
  let stoppedAtMs: number | undefined;
  let emulatorView: Awaited<ReturnType<LocalTarget['dnsEmulatorView']>> | undefined;
  let repliesBefore: number | null = null;
  let injectedAt: number | null = null;
  let actions: string[];
  let data: DataCheck | null = null;
  let observed: ClientOutcome[] | undefined;
  let rollback = ROLLBACK_NOT_RUN;
  let roomsByRegion: Record<string, number>;
  let observedUntil: number;

  try {
    roomsByRegion = await joinFleet(target, fleet, opts);
    dnsWatch.start();
    if (dnsOutage) backupWatch.start();
    // A DNS outage takes no region down: every replica is a survivor.
    const survivors = dnsOutage ? target.regionNames : target.regionNames.filter((r) => r !== opts.region);
    const before = await settledItems(target, survivors[0]!);

    // Recorded before the fault is injected, so a half-done injection is still rolled back below.
    if (dnsOutage) repliesBefore = (await target.dnsEmulatorView(Date.now())).primaryReplies;
    fleet.forEach((c) => c.snapshotBefore());
    const requestedAt = Date.now();
    injectedAt = markInjection(fleet, [dnsWatch, backupWatch], requestedAt);
    const injection = await target.inject(opts.region, opts.mode);
    actions = [...injection.actions];
    // Time zero is the fault's own moment, as the stack reports it, not the control request's start.
    injectedAt = markInjection(fleet, [dnsWatch, backupWatch], injection.at);
    requestMs = injection.at - requestedAt;
    injectedByMs = Date.now() - injectedAt;
    log(`injected ${opts.mode}${dnsOutage ? '' : ` into ${opts.region}`}: ${actions.join('; ')}`);

    if (dnsOutage) {
      await observeDnsOutage(target, fleet, header.runId, injectedAt, bounds.windowMs, opts);
      dnsWatch.stop();
      backupWatch.stop();
      stoppedAtMs = Date.now() - injectedAt;
      emulatorView = await target.dnsEmulatorView(injectedAt);
      // A query sent just before the stop may still be in flight; the rollback must not answer it.
      await sleep(DNS_SETTLE_MS);
    } else {
      await observe(fleet, dnsWatch, failed.address, injectedAt, bounds.windowMs, opts);
    }
    observedUntil = Date.now();
    dnsWatch.stop();
    // The verdict judges the fault's window: what the rollback later does to the clients (rooms that
    // move back onto a resumed region's servers) is the rollback's doing, not the fault's.
    observed = fleet.map((c) => c.outcome());
    data = await checkSurvivorData(target, survivors, before);
  } catch (err) {
    if (!(err instanceof SteadyStateError)) throw err;
    log(`steady state does not hold: ${err.message}; not injecting`);
    await Promise.all(fleet.map((c) => c.stop()));
    return notInjected(header, [err.message], bounds);
  } finally {
    dnsWatch.stop();
    backupWatch.stop();
    if (injectedAt !== null) {
      rollback = await rollBack(target, opts, log);
      if (data) data = { ...data, replicasConverged: await replicasConverge(target) };
    }
  }

  const outcomes = observed ?? fleet.map((c) => c.outcome());
  const media = {
    survivors: survivorMedia(
      fleet.filter((c) => c.withMedia).map((c) => c.witness()),
      dnsOutage ? '' : opts.region,
      { from: injectedAt!, to: observedUntil },
    ),
  };
  await Promise.all(fleet.map((c) => c.stop()));
  const observation = observationSummary(dnsWatch, failed.address, bounds);
  if (dnsOutage) {
    const observedDns = dnsOutageObservation(dnsWatch, backupWatch, {
      fromMs: injectedByMs ?? 0,
      toMs: (stoppedAtMs ?? Infinity) - DNS_SETTLE_MS,
    });
    const dns: DnsOutageObservation = {
      ...observedDns,
      ...(emulatorView ? { emulator: { ...emulatorView, repliesBefore } } : {}),
    };
    return {
      ...header,
      steadyState: { ok: true, detail: [], roomsByRegion },
      injection: { at: new Date(injectedAt!).toISOString(), requestMs, actions },
      observation: { ...observation, dnsDroppedAfterMs: null },
      groups: [],
      media,
      dnsOutage: {
        groups: groupDnsOutage(outcomes, target.state.backupDomain),
        dns,
      },
      clients: outcomes,
      data,
      rollback,
      verdict: judgeDnsOutage({
        clients: outcomes,
        backupDomain: target.state.backupDomain,
        dns,
        data: data!,
        rollbackOk: rollback.ok,
      }),
    };
  }
  const verdict = judge({
    failedRegion: opts.region,
    clients: outcomes,
    data: data!,
    dns: { droppedAfterMs: observation.dnsDroppedAfterMs, boundMs: bounds.dnsBoundMs },
    rollbackOk: rollback.ok,
    survivorMedia: media.survivors,
  });
  return {
    ...header,
    steadyState: { ok: true, detail: [], roomsByRegion },
    injection: { at: new Date(injectedAt!).toISOString(), requestMs, actions },
    observation,
    groups: groupOutcomes(outcomes, opts.region),
    media,
    clients: outcomes,
    data,
    rollback,
    verdict,
  };
}

const ROLLBACK_NOT_RUN: ChaosReport['rollback'] = {
  ok: false,
  actions: [],
  steadyStateAfterMs: null,
  detail: ['not run'],
};

/** The report's fields that are known before anything runs. */
type ReportHeader = Omit<
  ChaosReport,
  'steadyState' | 'injection' | 'observation' | 'groups' | 'clients' | 'data' | 'rollback' | 'verdict'
>;

interface ObservationBounds {
  /** When DNS must have stopped answering the failed region, from the injection. */
  readonly dnsBoundMs: number;
  /** How long the run observes after the injection (it may end early, see `observe`). */
  readonly windowMs: number;
}

function observationBounds(
  state: LocalTarget['state'],
  durationS: number | null,
  mode: FaultMode,
): ObservationBounds {
  const hc = state.healthCheck;
  // Route 53 semantics: `threshold` failed probes one interval apart, plus one interval of phase and
  // one probe timeout (a blackholed LB fails a probe only when it times out), plus scheduling slack
  // for a shared machine whose timers slip under load, plus one TTL: the watch asks through a real
  // resolver (c-ares), which may answer from its cache until the TTL runs out, as any client's would.
  const probeTimeoutMs = Math.max(1_000, Math.min(4_000, hc.intervalSeconds * 1_000));
  const dnsBoundMs =
    hc.intervalSeconds * 1_000 * (hc.failureThreshold + 1) +
    probeTimeoutMs +
    state.dnsTtlSeconds * 1_000 +
    SCHEDULING_SLACK_MS;
  const windowMs =
    (durationS ??
      Math.ceil(
        (mode === 'dns-outage'
          ? // Long enough for cached answers to expire, a wave of joins and their media, and quiet after.
            state.dnsTtlSeconds * 1_000 + 30_000
          : dnsBoundMs + state.dnsTtlSeconds * 1_000 + 20_000) / 1_000,
      )) * 1_000;
  return { dnsBoundMs, windowMs };
}

function reportHeader(state: LocalTarget['state'], opts: LocalRunOptions, windowMs: number): ReportHeader {
  return {
    target: 'local',
    region: opts.region,
    mode: opts.mode,
    runId: randomBytes(3).toString('hex'),
    startedAt: new Date().toISOString(),
    config: {
      clients: opts.clients,
      mediaClients: opts.mediaClients,
      durationS: windowMs / 1_000,
      healthCheck: state.healthCheck,
      dnsTtlSeconds: state.dnsTtlSeconds,
    },
  };
}

function observationSummary(
  dnsWatch: DnsWatch,
  failedAddress: string,
  bounds: ObservationBounds,
): ChaosReport['observation'] {
  return {
    windowMs: bounds.windowMs,
    dnsSamples: dnsWatch.samples.length,
    dnsDroppedAfterMs: dnsWatch.droppedAfterMs(failedAddress),
    dnsBoundMs: bounds.dnsBoundMs,
  };
}

/** Watches what the backup name answers from a client location near each region. */
function watchBackupDns(state: LocalTarget['state']): DnsWatch {
  return new DnsWatch(
    `api-backup.${state.backupDomain}`,
    state.dns.backup,
    state.regions.map((r) => ({ location: r.name, source: r.address.replace(/\.\d+$/, '.99') })),
  );
}

/** What each zone answered between the injection taking effect and the end of the observation. */
function dnsOutageObservation(
  primary: DnsWatch,
  backup: DnsWatch,
  window: { fromMs: number; toMs: number },
): DnsOutageObservation {
  const during = (w: DnsWatch) => w.samples.filter((s) => s.atMs >= window.fromMs && s.atMs <= window.toMs);
  return {
    primaryQueries: during(primary).length,
    primaryAnswered: during(primary).filter((s) => !s.error).length,
    primaryAnsweredSamples: during(primary).filter((s) => !s.error),
    backupQueries: during(backup).length,
    backupAnswered: during(backup).filter((s) => !s.error).length,
  };
}

/**
 * The DNS outage's observation: the connected clients keep running; once every primary answer they
 * may have cached has expired, a second wave of clients joins (half dual-URL, half DNS-only, and a
 * dual-URL media pair), then the run watches until the window ends.
 */
async function observeDnsOutage(
  target: LocalTarget,
  fleet: SimulatedClient[],
  runId: string,
  injectedAt: number,
  windowMs: number,
  opts: LocalRunOptions,
): Promise<void> {
  const joinAt = injectedAt + target.state.dnsTtlSeconds * 1_000 + 1_000;
  while (Date.now() < joinAt && !opts.aborted()) {
    await sleep(250);
    fleet.forEach((c) => c.pollMedia());
  }
  const wave = buildOutageWave(target, runId, opts, fleet.length);
  fleet.push(...wave);
  wave.forEach((c) => c.markInjection(injectedAt));
  opts.log(
    `t+${((Date.now() - injectedAt) / 1000).toFixed(0)}s: ${wave.length} clients join during the outage (cached primary answers expired)`,
  );
  await Promise.all(
    wave.map((c) =>
      c.start(OUTAGE_JOIN_TIMEOUT_MS).catch((err: Error) => opts.log(`  ${c.id}: ${err.message}`)),
    ),
  );
  let lastProgress = 0;
  while (Date.now() - injectedAt < windowMs && !opts.aborted()) {
    await sleep(250);
    fleet.forEach((c) => c.pollMedia());
    const now = Date.now();
    if (now - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = now;
      const outcomes = fleet.map((c) => c.outcome());
      const dual = outcomes.filter((c) => c.kind === 'dual-url');
      const joined = dual.filter((c) => c.startedAfterInjection && c.joinedAtMs !== null).length;
      opts.log(
        `t+${((now - injectedAt) / 1000).toFixed(0)}s: dual-URL failed calls ${dual.reduce((s, c) => s + c.failedCallsAfterInjection, 0)}, ` +
          `sessions lost ${dual.filter((c) => c.signalingLostAtMs !== null).length}, joined during outage ${joined}/${dual.filter((c) => c.startedAfterInjection).length}`,
      );
    }
  }
}

/** The clients that join during a DNS outage, numbered after the fleet's. */
function buildOutageWave(
  target: LocalTarget,
  runId: string,
  opts: LocalRunOptions,
  firstIndex: number,
): SimulatedClient[] {
  const fleetOpts = fleetOptions(target);
  const regions = fleetOpts.regions;
  const signalingOnly = Math.max(4, Math.round(opts.clients / 4));
  const wave: SimulatedClient[] = [];
  for (let i = 0; i < signalingOnly; i++) {
    const location = regions[i % regions.length]!;
    const kind = i % 2 === 0 ? 'dual-url' : 'dns-only';
    wave.push(
      new SimulatedClient(
        { index: firstIndex + i, location, kind, room: `chaos-${runId}-outage-r${Math.floor(i / 2)}` },
        fleetOpts,
      ),
    );
  }
  if (opts.mediaClients > 0) {
    for (let k = 0; k < 2; k++) {
      wave.push(
        new SimulatedClient(
          {
            index: firstIndex + signalingOnly + k,
            location: regions[k % regions.length]!,
            kind: 'dual-url',
            room: `chaos-${runId}-outage-media`,
            withMedia: true,
          },
          fleetOpts,
        ),
      );
    }
  }
  return wave;
}

/** Watches what the primary name answers from a client location near each region. */
function watchPrimaryDns(state: LocalTarget['state']): DnsWatch {
  return new DnsWatch(
    `api.${state.domain}`,
    state.dns.primary,
    state.regions.map((r) => ({ location: r.name, source: r.address.replace(/\.\d+$/, '.99') })),
  );
}

/**
 * Steady state, the clients' part: every client joined, media flowing where there is media, rooms on
 * one server per region (a leg each, cascading) and spread over regions. Throws SteadyStateError when it does not hold; returns the
 * rooms per region.
 */
async function joinFleet(
  target: LocalTarget,
  fleet: readonly SimulatedClient[],
  opts: LocalRunOptions,
): Promise<Record<string, number>> {
  opts.log(
    `steady state: joining ${fleet.length} clients (${opts.mediaClients} with media) in ${new Set(fleet.map((c) => c.room)).size} rooms`,
  );
  for (let i = 0; i < fleet.length; i += JOIN_BATCH) {
    await Promise.all(fleet.slice(i, i + JOIN_BATCH).map((c) => c.start(20_000)));
  }
  // Every media client receives every other media client of its room, whichever region each is in.
  const media = fleet.filter((x) => x.withMedia);
  for (const c of media) {
    const peers = media.filter((o) => o !== c && o.room === c.room);
    if (!(await c.receivesFrom(peers, 20_000))) {
      const missing = peers.filter((o) => c.remoteFrames.framesFrom(o.peerIds) === 0).map((o) => o.id);
      throw new SteadyStateError(`${c.id} receives no media from ${missing.join(', ') || 'some peers'}`);
    }
  }
  // Peers of a room that joined at the same moment through the same region may start on two servers;
  // the media servers converge them within seconds, to one leg per region. Steady state means converged.
  const splitRooms = await waitRoomsConverged(fleet, 20_000);
  if (splitRooms.length > 0)
    throw new SteadyStateError(`rooms still split over servers of one region: ${splitRooms.join(', ')}`);
  const roomsByRegion = countRoomsByRegion(fleet);
  const hosting = Object.keys(roomsByRegion).length;
  if (hosting < Math.min(2, target.regionNames.length)) {
    throw new SteadyStateError(`rooms are not spread across regions: ${JSON.stringify(roomsByRegion)}`);
  }
  opts.log(`steady state holds: rooms by region ${JSON.stringify(roomsByRegion)}`);
  return roomsByRegion;
}

/** One replica's items once replication settled, so "reached a surviving replica" holds for all of them. */
async function settledItems(target: LocalTarget, region: string): Promise<ReplicaItem[]> {
  await sleep(1_500);
  return target.scanReplica(region);
}

/**
 * Time zero of the run, for every client and the DNS watches; returns it. Marked once before the fault
 * is requested and again at the moment the fault took effect.
 */
function markInjection(fleet: readonly SimulatedClient[], watches: readonly DnsWatch[], at: number): number {
  fleet.forEach((c) => c.markInjection(at));
  watches.forEach((w) => w.markInjection(at));
  return at;
}

/** What the surviving replicas lost of `before`; whether they converge is added after the rollback. */
async function checkSurvivorData(
  target: LocalTarget,
  survivors: readonly string[],
  before: readonly ReplicaItem[],
): Promise<DataCheck> {
  await sleep(1_500);
  const afterSurvivors = await Promise.all(survivors.map((r) => target.scanReplica(r)));
  const lostKeys = before
    .map((i) => i.key)
    .filter((k) => !afterSurvivors.every((items) => items.some((i) => i.key === k)));
  return {
    itemsBefore: before.length,
    roomsBefore: countRooms(before),
    roomsAfter: countRooms(afterSurvivors[0]!),
    itemsLost: lostKeys.length,
    lostKeys,
    replicasConverged: false,
  };
}

class SteadyStateError extends Error {}

function fleetOptions(target: LocalTarget): FleetOptions {
  const state = target.state;
  return {
    regions: state.regions.map((r) => ({ name: r.name, address: r.address, lbUrl: r.lbUrl })),
    domain: state.domain,
    backupDomain: state.backupDomain,
    lbPort: state.lbPort,
    dns: state.dns,
    dnsTtlSeconds: state.dnsTtlSeconds,
    token: (room: string, sub: string) => target.token(room, sub),
  };
}

function buildFleet(target: LocalTarget, runId: string, opts: LocalRunOptions): SimulatedClient[] {
  const fleetOpts = fleetOptions(target);
  const regions = fleetOpts.regions;
  const clients: SimulatedClient[] = [];
  const signalingOnly = opts.clients - opts.mediaClients;
  for (let i = 0; i < signalingOnly; i++) {
    // Locations rotate over the regions; kinds alternate per round so every location has both;
    // pairs share a room, so half the clients use an API region other than their room's server region.
    const location = regions[i % regions.length]!;
    const kind = Math.floor(i / regions.length) % 2 === 0 ? 'dual-url' : 'dns-only';
    clients.push(
      new SimulatedClient(
        { index: i, location, kind, room: `chaos-${runId}-r${Math.floor(i / 2)}` },
        fleetOpts,
      ),
    );
  }
  // Media clients share one room, cascaded across regions: one near each other region (the survivors,
  // whose media from each other must not stop: media.survivors), the rest near the failed region, whose
  // recovery is timed. Near the failed region kinds alternate, and the second pair there is forced
  // through the TURN relay: its recovery needs a surviving region's relay, with the rejoin's credential.
  const others = regions.filter((r) => r.name !== opts.region);
  const witnesses = opts.mediaClients >= others.length + 2 ? others : [];
  const mediaLocation = regions.find((r) => r.name === opts.region)!;
  for (let k = 0; k < opts.mediaClients; k++) {
    const index = signalingOnly + k;
    const room = `chaos-${runId}-media`;
    if (k < witnesses.length) {
      const location = witnesses[k]!;
      clients.push(
        new SimulatedClient(
          { index, location, kind: 'dual-url', room, withMedia: true, witness: true },
          fleetOpts,
        ),
      );
      continue;
    }
    const n = k - witnesses.length;
    const kind = n % 2 === 0 ? 'dual-url' : 'dns-only';
    const forcedRelay = Math.floor(n / 2) % 2 === 1;
    clients.push(
      new SimulatedClient(
        { index, location: mediaLocation, kind, room, withMedia: true, forcedRelay },
        fleetOpts,
      ),
    );
  }
  return clients;
}

async function waitRoomsConverged(fleet: readonly SimulatedClient[], timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // A room has at most one leg (one server) per region.
    const servers = new Map<string, Set<string>>();
    for (const c of fleet) {
      const leg = `${c.room} in ${c.serverRegion}`;
      servers.set(leg, (servers.get(leg) ?? new Set()).add(c.serverId));
    }
    const split = [...servers.entries()].filter(([, ids]) => ids.size > 1).map(([leg]) => leg);
    if (split.length === 0 || Date.now() > deadline) return split;
    await sleep(250);
  }
}

function countRoomsByRegion(fleet: readonly SimulatedClient[]): Record<string, number> {
  const rooms = new Map<string, string>();
  for (const c of fleet) rooms.set(c.room, c.serverRegion);
  const counts: Record<string, number> = {};
  for (const region of rooms.values()) counts[region] = (counts[region] ?? 0) + 1;
  return counts;
}

async function observe(
  fleet: readonly SimulatedClient[],
  dnsWatch: DnsWatch,
  failedAddress: string,
  injectedAt: number,
  windowMs: number,
  opts: LocalRunOptions,
): Promise<void> {
  let lastProgress = 0;
  let recoveredSince: number | null = null;
  while (Date.now() - injectedAt < windowMs && !opts.aborted()) {
    await sleep(250);
    fleet.forEach((c) => c.pollMedia());
    const now = Date.now();
    const outcomes = fleet.map((c) => c.outcome());
    const affected = outcomes.filter(
      (c) => c.apiRegionBefore === opts.region || c.serverRegionBefore === opts.region,
    );
    const recovered = affected.filter(
      (c) =>
        c.serverRegionAfter !== opts.region &&
        (c.detectedAtMs === null || c.recoveredAtMs !== null) &&
        (!c.withMedia || c.sessionDownAtMs === null || c.mediaAtMs !== null),
    );
    const dropped = dnsWatch.droppedAfterMs(failedAddress) !== null;
    if (now - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = now;
      const survivorsFailed = outcomes
        .filter((c) => !affected.includes(c))
        .reduce((s, c) => s + c.failedRequestsAfterInjection, 0);
      opts.log(
        `t+${((now - injectedAt) / 1000).toFixed(0)}s: affected ${recovered.length}/${affected.length} recovered, ` +
          `survivors' failed requests ${survivorsFailed}, DNS ${dropped ? 'no longer answers' : 'still answers'} ${opts.region}`,
      );
    }
    if (recovered.length === affected.length && dropped) {
      recoveredSince ??= now;
      if (now - recoveredSince >= SETTLE_AFTER_RECOVERY_MS) break;
    } else {
      recoveredSince = null;
    }
  }
}

async function rollBack(
  target: LocalTarget,
  opts: LocalRunOptions,
  log: (l: string) => void,
): Promise<ChaosReport['rollback']> {
  const started = Date.now();
  try {
    const actions = await target.rollback(opts.region, opts.mode);
    log(`rollback: ${actions.join('; ')}; waiting for steady state`);
    const steady = await target.waitSteadyState(90_000);
    log(
      steady.ok
        ? `rollback: steady state again after ${((Date.now() - started) / 1000).toFixed(1)} s`
        : `rollback: steady state NOT restored: ${steady.detail.join('; ')}`,
    );
    return {
      ok: steady.ok,
      actions,
      steadyStateAfterMs: steady.ok ? Date.now() - started : null,
      detail: steady.detail,
    };
  } catch (err) {
    log(`rollback failed: ${(err as Error).message}`);
    return { ok: false, actions: [], steadyStateAfterMs: null, detail: [(err as Error).message] };
  }
}

/**
 * Rooms among a replica's items: one per `room#<id>` partition, whatever legs it has (a cascaded room's
 * legs in other regions are items of the same partition, and a rejoin may add one).
 */
function countRooms(items: readonly ReplicaItem[]): number {
  return new Set(items.filter((i) => i.key.startsWith('room#')).map((i) => i.key.split('|')[0])).size;
}

/** After the rollback every replica must hold the same items (keys, and the same room assignments). */
async function replicasConverge(target: LocalTarget): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const scans = await Promise.all(target.regionNames.map((r) => target.scanReplica(r).catch(() => null)));
    if (scans.every((s) => s !== null)) {
      const fingerprints = scans.map((items) =>
        items!
          .map((i) =>
            i.key.startsWith('room#')
              ? `${i.key}=${String(i.item.serverId)}@${String(i.item.version)}`
              : i.key,
          )
          .sort()
          .join('\n'),
      );
      if (fingerprints.every((f) => f === fingerprints[0])) return true;
    }
    await sleep(500);
  }
  return false;
}

function notInjected(header: ReportHeader, detail: string[], bounds: ObservationBounds): ChaosReport {
  return {
    ...header,
    steadyState: { ok: false, detail, roomsByRegion: {} },
    injection: { at: null, requestMs: null, actions: [] },
    observation: {
      windowMs: bounds.windowMs,
      dnsSamples: 0,
      dnsDroppedAfterMs: null,
      dnsBoundMs: bounds.dnsBoundMs,
    },
    groups: [],
    clients: [],
    data: null,
    rollback: {
      ok: true,
      actions: [],
      steadyStateAfterMs: null,
      detail: ['nothing injected, nothing to roll back'],
    },
    verdict: {
      pass: false,
      checks: [{ name: 'steady state held before the injection', pass: false, detail: detail.join('; ') }],
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
