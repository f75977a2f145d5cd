/**
 * The chaos run's measurements and its verdict, as pure functions over what the run observed, so the
 * rules are unit-tested apart from any stack.
 *
 * The hypothesis: losing one region removes only that region.
 *   - clients whose API region and room server were both outside the failed region see zero failed requests;
 *   - every affected client recovers (dual-URL clients fast; DNS-only ones within the DNS bound);
 *   - no item that reached a surviving replica is lost, and the replicas converge after the rollback;
 *   - DNS stops answering the failed region within interval x threshold (+ TTL and slack);
 *   - media clients outside the failed region keep receiving each other (no gap of 500 ms or more).
 */
import { SURVIVOR_GAP_LIMIT_MS, type SurvivorMedia } from './survivors';

export type ClientKind = 'dual-url' | 'dns-only';

export interface ClientOutcome {
  readonly id: string;
  /** Region the client sits near (its DNS location). */
  readonly location: string;
  readonly kind: ClientKind;
  readonly withMedia: boolean;
  /** Its media went only through the TURN relay of the region serving it. */
  readonly forcedRelay: boolean;
  /** Region of the LB that answered its last join before the injection, and of its media server. */
  readonly apiRegionBefore: string;
  readonly serverRegionBefore: string;
  /** Attempts after the injection (a call may make several: hedges, fallbacks) and the failed ones. */
  readonly requestsAfterInjection: number;
  readonly failedRequestsAfterInjection: number;
  /** API calls after the injection, and those that no URL answered (what the client's user saw fail). */
  readonly callsAfterInjection: number;
  readonly failedCallsAfterInjection: number;
  /** Ms from the injection until its session lost signaling; null if it never did. */
  readonly sessionDownAtMs: number | null;
  /**
   * Ms from the injection until its signaling was lost for a reason the platform did not order; a
   * `room_moved` rejoin (a media server sending the peer on while a split room converges) is not one.
   */
  readonly signalingLostAtMs: number | null;
  /** Rejoins after the injection because the room moved (split-room convergence, placement). */
  readonly roomMovesAfterInjection: number;
  /** Whether the client first joined after the injection, during the fault. */
  readonly startedAfterInjection: boolean;
  /** For a client started after the injection: ms from the injection until it started, and joined. */
  readonly startedAtMs: number | null;
  readonly joinedAtMs: number | null;
  /** The signaling URL its live connection uses (or last used). */
  readonly signalingUrl: string | null;
  /** Ms from the injection to its first failure (session lost or API call failed); null if none. */
  readonly detectedAtMs: number | null;
  /** Ms from the injection until everything that failed works again; null if not (yet). */
  readonly recoveredAtMs: number | null;
  /** Ms from the injection until media flowed again (media clients only). */
  readonly mediaAtMs: number | null;
  readonly serverRegionAfter: string | null;
  /** What the client's session went through after the injection (reconnects, errors), ms from it. */
  readonly events: readonly { readonly atMs: number; readonly what: string }[];
}

export interface Distribution {
  readonly count: number;
  readonly p50: number | null;
  readonly p95: number | null;
  readonly max: number | null;
}

export interface GroupOutcome {
  readonly group: string;
  readonly affected: boolean;
  readonly kind: ClientKind;
  readonly clients: number;
  readonly failedRequests: number;
  readonly detected: number;
  readonly recovered: number;
  readonly detectMs: Distribution;
  /** Outage as the client saw it: from its detection to its recovery. */
  readonly outageMs: Distribution;
  /** From the injection to the recovery: what the targets are stated in. */
  readonly recoveryMs: Distribution;
  readonly mediaMs: Distribution;
}

export interface DataCheck {
  readonly itemsBefore: number;
  readonly roomsBefore: number;
  readonly roomsAfter: number;
  readonly itemsLost: number;
  readonly lostKeys: readonly string[];
  readonly replicasConverged: boolean;
}

export interface DnsCheck {
  /** Ms from injection until no client location got the failed region's address; null if never. */
  readonly droppedAfterMs: number | null;
  /** interval x threshold + TTL + slack. */
  readonly boundMs: number;
}

export interface Check {
  readonly name: string;
  readonly pass: boolean;
  readonly detail: string;
}

export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

export function distribution(values: readonly number[]): Distribution {
  return {
    count: values.length,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    max: values.length ? Math.max(...values) : null,
  };
}

export function isAffected(c: ClientOutcome, failedRegion: string): boolean {
  return c.apiRegionBefore === failedRegion || c.serverRegionBefore === failedRegion;
}

export function groupOutcomes(clients: readonly ClientOutcome[], failedRegion: string): GroupOutcome[] {
  const groups: GroupOutcome[] = [];
  for (const affected of [false, true]) {
    for (const kind of ['dual-url', 'dns-only'] as const) {
      const members = clients.filter((c) => isAffected(c, failedRegion) === affected && c.kind === kind);
      const numbers = (pick: (c: ClientOutcome) => number | null) =>
        members.map(pick).filter((v): v is number => v !== null);
      groups.push({
        group: `${affected ? 'affected' : 'survivors'} / ${kind}`,
        affected,
        kind,
        clients: members.length,
        failedRequests: members.reduce((sum, c) => sum + c.failedRequestsAfterInjection, 0),
        detected: members.filter((c) => c.detectedAtMs !== null).length,
        recovered: members.filter((c) => c.detectedAtMs !== null && c.recoveredAtMs !== null).length,
        detectMs: distribution(numbers((c) => c.detectedAtMs)),
        outageMs: distribution(
          numbers((c) =>
            c.recoveredAtMs !== null && c.detectedAtMs !== null ? c.recoveredAtMs - c.detectedAtMs : null,
          ),
        ),
        recoveryMs: distribution(numbers((c) => c.recoveredAtMs)),
        mediaMs: distribution(numbers((c) => c.mediaAtMs)),
      });
    }
  }
  return groups;
}

export function judge(input: {
  readonly failedRegion: string;
  readonly clients: readonly ClientOutcome[];
  readonly data: DataCheck;
  readonly dns: DnsCheck;
  readonly rollbackOk: boolean;
  /** Media between the clients outside the failed region; judged when given. */
  readonly survivorMedia?: SurvivorMedia;
}): { pass: boolean; checks: Check[] } {
  const { clients, failedRegion } = input;
  const survivors = clients.filter((c) => !isAffected(c, failedRegion));
  const affected = clients.filter((c) => isAffected(c, failedRegion));
  const failedSurvivors = survivors.filter((c) => c.failedRequestsAfterInjection > 0);
  // An affected client that saw no failure at all is fine (an evacuated region's LB keeps answering);
  // one that failed must be working again, with media if it had media, and not on the failed region.
  const unrecovered = affected.filter(
    (c) =>
      (c.detectedAtMs !== null && c.recoveredAtMs === null) ||
      // Media must come back only where the session (and with it the media) was lost: a client whose API
      // region failed while its media server lived elsewhere never stopped receiving.
      (c.withMedia && c.sessionDownAtMs !== null && c.mediaAtMs === null) ||
      c.serverRegionAfter === failedRegion,
  );
  const checks: Check[] = [
    {
      name: 'survivors saw zero failed requests',
      pass: failedSurvivors.length === 0,
      detail:
        failedSurvivors.length === 0
          ? `${survivors.length} clients outside ${failedRegion}, 0 failed requests`
          : `${failedSurvivors.length} of ${survivors.length} failed: ${failedSurvivors.map((c) => `${c.id} (${c.failedRequestsAfterInjection})`).join(', ')}`,
    },
    {
      name: 'every affected client recovered',
      pass: unrecovered.length === 0,
      detail:
        unrecovered.length === 0
          ? `${affected.length} of ${affected.length} working, on servers outside ${failedRegion}`
          : `${unrecovered.length} of ${affected.length} did not recover: ${unrecovered.map((c) => c.id).join(', ')}`,
    },
    {
      name: 'no item that reached a surviving replica was lost',
      pass: input.data.itemsLost === 0 && input.data.replicasConverged,
      detail: `${input.data.itemsBefore} items before, ${input.data.itemsLost} lost${input.data.lostKeys.length ? ` (${input.data.lostKeys.slice(0, 5).join(', ')})` : ''}; replicas ${input.data.replicasConverged ? 'converged' : 'differ'}`,
    },
    {
      name: 'DNS stopped answering the failed region within its bound',
      pass: input.dns.droppedAfterMs !== null && input.dns.droppedAfterMs <= input.dns.boundMs,
      detail:
        input.dns.droppedAfterMs === null
          ? `still answered after the observation window (bound ${input.dns.boundMs} ms)`
          : `dropped after ${input.dns.droppedAfterMs} ms (bound ${input.dns.boundMs} ms)`,
    },
    ...(input.survivorMedia ? [survivorMediaCheck(input.survivorMedia, failedRegion)] : []),
    {
      name: 'rollback restored steady state',
      pass: input.rollbackOk,
      detail: input.rollbackOk ? 'every region healthy again' : 'steady state not restored',
    },
  ];
  return { pass: checks.every((c) => c.pass), checks };
}

/**
 * `--mode dns-outage`: the primary zone stops answering while every region stays up. The hypothesis:
 * the backup name family alone carries dual-URL clients.
 *   - dual-URL clients see zero failed calls (a call a fallback answered is not a failure to its user);
 *   - every dual-URL client connected at the injection stays connected (its sockets need no DNS);
 *   - every dual-URL client that joins during the outage joins, and signals through a backup name;
 *     those with media get media;
 *   - the primary zone really was silent and the backup zone kept answering;
 *   - no item is lost, and the rollback restores steady state.
 * DNS-only clients have nothing but the primary name: they are the baseline, reported and not judged.
 */
export interface DnsOutageObservation {
  /** Queries of the primary name after the injection (each location, every sample) and those answered. */
  readonly primaryQueries: number;
  readonly primaryAnswered: number;
  /** The answered primary queries (should be none): when they were sent, from where, what they got. */
  readonly primaryAnsweredSamples?: readonly {
    readonly atMs: number;
    readonly location: string;
    readonly addresses: readonly string[];
    readonly tookMs?: number;
  }[];
  /** The emulator's own record: zone changes and the primary zone's answers since the injection. */
  readonly emulator?: {
    readonly zoneChanges: readonly {
      readonly atMs: number;
      readonly zone: string;
      readonly failed: boolean;
    }[];
    readonly primaryAnswers: readonly {
      readonly atMs: number;
      readonly source: string;
      readonly name: string;
    }[];
    /** Replies the primary zone's server had sent just before the injection, and at the end of the outage. */
    readonly repliesBefore: number | null;
    readonly primaryReplies: number | null;
  };
  /** The same for the backup name. */
  readonly backupQueries: number;
  readonly backupAnswered: number;
}

export interface DnsOutageGroup {
  readonly group: string;
  readonly kind: ClientKind;
  /** Connected before the injection, or joined during the outage. */
  readonly phase: 'connected' | 'joined during outage';
  readonly clients: number;
  readonly calls: number;
  readonly failedCalls: number;
  /** Attempts that failed inside calls (a primary name that timed out before the backup answered). */
  readonly failedAttempts: number;
  /** Clients whose signaling was lost (not counting rooms the platform moved). */
  readonly sessionsLost: number;
  /** Rejoins because the room moved (the platform converging a split room), not caused by DNS. */
  readonly roomMoves: number;
  /** Joined (phase "joined during outage"), or still connected (phase "connected"). */
  readonly joined: number;
  /** Signaling through a backup name. */
  readonly onBackupNames: number;
  /** Ms from the injection: the join of a client started during the outage. */
  readonly joinMs: Distribution;
  /** Ms from the injection until its API worked again after its first failed attempt. */
  readonly recoveryMs: Distribution;
  readonly mediaMs: Distribution;
}

function onBackupName(c: ClientOutcome, backupDomain: string): boolean {
  if (!c.signalingUrl) return false;
  const host = new URL(c.signalingUrl).hostname;
  return host === backupDomain || host.endsWith(`.${backupDomain}`);
}

export function groupDnsOutage(clients: readonly ClientOutcome[], backupDomain: string): DnsOutageGroup[] {
  const groups: DnsOutageGroup[] = [];
  for (const phase of ['connected', 'joined during outage'] as const) {
    for (const kind of ['dual-url', 'dns-only'] as const) {
      const members = clients.filter(
        (c) => c.kind === kind && c.startedAfterInjection === (phase === 'joined during outage'),
      );
      const numbers = (pick: (c: ClientOutcome) => number | null) =>
        members.map(pick).filter((v): v is number => v !== null);
      groups.push({
        group: `${phase} / ${kind}`,
        kind,
        phase,
        clients: members.length,
        calls: members.reduce((s, c) => s + c.callsAfterInjection, 0),
        failedCalls: members.reduce((s, c) => s + c.failedCallsAfterInjection, 0),
        failedAttempts: members.reduce((s, c) => s + c.failedRequestsAfterInjection, 0),
        sessionsLost: members.filter((c) => c.signalingLostAtMs !== null).length,
        roomMoves: members.reduce((s, c) => s + c.roomMovesAfterInjection, 0),
        joined: members.filter((c) =>
          phase === 'connected' ? c.signalingLostAtMs === null : c.joinedAtMs !== null,
        ).length,
        onBackupNames: members.filter((c) => onBackupName(c, backupDomain)).length,
        joinMs: distribution(numbers((c) => c.joinedAtMs)),
        recoveryMs: distribution(numbers((c) => c.recoveredAtMs)),
        mediaMs: distribution(numbers((c) => c.mediaAtMs)),
      });
    }
  }
  return groups;
}

export function judgeDnsOutage(input: {
  readonly clients: readonly ClientOutcome[];
  readonly backupDomain: string;
  readonly dns: DnsOutageObservation;
  readonly data: DataCheck;
  readonly rollbackOk: boolean;
}): { pass: boolean; checks: Check[] } {
  const dual = input.clients.filter((c) => c.kind === 'dual-url');
  const connected = dual.filter((c) => !c.startedAfterInjection);
  const joiners = dual.filter((c) => c.startedAfterInjection);
  const failedCalls = dual.filter((c) => c.failedCallsAfterInjection > 0);
  const lost = connected.filter((c) => c.signalingLostAtMs !== null);
  const moved = connected.reduce((s, c) => s + c.roomMovesAfterInjection, 0);
  const notJoined = joiners.filter((c) => c.joinedAtMs === null || !onBackupName(c, input.backupDomain));
  const noMedia = joiners.filter((c) => c.withMedia && c.mediaAtMs === null);
  const { dns } = input;
  const checks: Check[] = [
    {
      name: 'dual-URL clients saw zero failed requests',
      pass: failedCalls.length === 0,
      detail:
        failedCalls.length === 0
          ? `${dual.length} clients, ${dual.reduce((s, c) => s + c.callsAfterInjection, 0)} calls, 0 failed`
          : `${failedCalls.length} of ${dual.length} had failed calls: ${failedCalls.map((c) => `${c.id} (${c.failedCallsAfterInjection})`).join(', ')}`,
    },
    {
      name: 'connected dual-URL clients stayed connected',
      pass: lost.length === 0,
      detail:
        lost.length === 0
          ? `${connected.length} of ${connected.length} kept their signaling${moved ? ` (${moved} rejoins because a split room converged, not counted)` : ''}`
          : `${lost.length} of ${connected.length} lost signaling: ${lost.map((c) => c.id).join(', ')}`,
    },
    {
      name: 'every dual-URL client that joined during the outage joined and signals by backup names',
      pass: joiners.length > 0 && notJoined.length === 0,
      detail:
        joiners.length === 0
          ? 'no client joined during the outage'
          : notJoined.length === 0
            ? `${joiners.length} of ${joiners.length} joined (100%), all signaling through ${input.backupDomain}`
            : `${notJoined.length} of ${joiners.length} did not: ${notJoined.map((c) => `${c.id} (${c.signalingUrl ?? 'not joined'})`).join(', ')}`,
    },
    {
      name: 'dual-URL media clients that joined during the outage get media',
      pass: noMedia.length === 0,
      detail:
        noMedia.length === 0
          ? `${joiners.filter((c) => c.withMedia).length} media clients receive video`
          : `no media for ${noMedia.map((c) => c.id).join(', ')}`,
    },
    {
      // The emulator's own record is the zone's: no answer from the moment it failed the zone (the reply
      // counter read before the injection also counts queries answered while the fail request was on its
      // way). The watch's queries (from outside) say what clients saw; both are reported.
      name: 'the primary zone stayed silent and the backup zone kept answering',
      pass:
        dns.primaryQueries > 0 &&
        dns.backupAnswered === dns.backupQueries &&
        (dns.emulator ? primarySilentAfterFailure(dns.emulator) : dns.primaryAnswered === 0),
      detail:
        `primary zone answers after it failed: ${dns.emulator ? answersAfterFailure(dns.emulator).length : 'unknown'}; ` +
        `watch: primary answered ${dns.primaryAnswered} of ${dns.primaryQueries} queries, backup ${dns.backupAnswered} of ${dns.backupQueries}`,
    },
    {
      name: 'no item was lost',
      pass: input.data.itemsLost === 0 && input.data.replicasConverged,
      detail: `${input.data.itemsBefore} items before, ${input.data.itemsLost} lost; replicas ${input.data.replicasConverged ? 'converged' : 'differ'}`,
    },
    {
      name: 'rollback restored steady state',
      pass: input.rollbackOk,
      detail: input.rollbackOk
        ? 'the primary zone answers again, every region healthy'
        : 'steady state not restored',
    },
  ];
  return { pass: checks.every((c) => c.pass), checks };
}

/**
 * Media clients outside the failed region kept receiving each other: at least one such pair, and no gap
 * of SURVIVOR_GAP_LIMIT_MS or more in either direction after the injection.
 */
export function survivorMediaCheck(media: SurvivorMedia, failedRegion: string): Check {
  const worst = [...media.byPair].sort((a, b) => b.gapMs - a.gapMs)[0];
  return {
    name: `media between peers outside the failed region never stopped for ${SURVIVOR_GAP_LIMIT_MS} ms`,
    pass: media.pairs > 0 && media.maxGapMs !== null && media.maxGapMs < SURVIVOR_GAP_LIMIT_MS,
    detail:
      media.pairs === 0
        ? `no pair of media clients outside ${failedRegion} to measure`
        : `${media.pairs} pairs, longest gap ${media.maxGapMs} ms (${worst!.a} ↔ ${worst!.b}), p95 ${media.p95GapMs} ms`,
  };
}

type EmulatorRecord = NonNullable<DnsOutageObservation['emulator']>;

/** The primary zone's answers from the moment the emulator failed it (all of them if it never did). */
function answersAfterFailure(e: EmulatorRecord): EmulatorRecord['primaryAnswers'] {
  const failedAt = e.zoneChanges.find((c) => c.zone === 'primary' && c.failed)?.atMs;
  return failedAt === undefined ? e.primaryAnswers : e.primaryAnswers.filter((a) => a.atMs >= failedAt);
}

function primarySilentAfterFailure(e: EmulatorRecord): boolean {
  return e.zoneChanges.some((c) => c.zone === 'primary' && c.failed) && answersAfterFailure(e).length === 0;
}
