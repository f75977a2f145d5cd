/**
 * The chaos run's measurements and its verdict, as pure functions over what the run observed, so the
 * rules are unit-tested apart from any stack.
 *
 * The hypothesis: losing one region removes only that region.
 *   - clients whose API region and room server were both outside the failed region see zero failed requests;
 *   - every affected client recovers (dual-URL clients fast; DNS-only ones within the DNS bound);
 *   - no item that reached a surviving replica is lost, and the replicas converge after the rollback;
 *   - DNS stops answering the failed region within interval x threshold (+ TTL and slack).
 */

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
  readonly requestsAfterInjection: number;
  readonly failedRequestsAfterInjection: number;
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
      (c.withMedia && c.detectedAtMs !== null && c.mediaAtMs === null) ||
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
    {
      name: 'rollback restored steady state',
      pass: input.rollbackOk,
      detail: input.rollbackOk ? 'every region healthy again' : 'steady state not restored',
    },
  ];
  return { pass: checks.every((c) => c.pass), checks };
}
