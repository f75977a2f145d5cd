/**
 * Watches what `api.<domain>` answers from every client location during a chaos run, with real DNS
 * queries from each location's source address, so "DNS stopped answering the failed region" is an
 * observation and not a reading of the emulator's internal state (the same check works against
 * public resolvers for `--target aws`).
 */
import { Resolver } from 'node:dns/promises';

export interface DnsSample {
  /** Ms since the injection (negative before it). */
  readonly atMs: number;
  readonly location: string;
  readonly addresses: readonly string[];
  readonly error?: string;
  /** How long the query took, ms. */
  readonly tookMs?: number;
}

const SAMPLE_INTERVAL_MS = 500;
const QUERY_TIMEOUT_MS = 1_000;

export class DnsWatch {
  /** Samples by epoch ms, so time zero may be marked again after they were taken. */
  private readonly taken: (Omit<DnsSample, 'atMs'> & { at: number })[] = [];
  private timer: NodeJS.Timeout | undefined;
  private injectionAt = Date.now();
  private readonly resolvers: { location: string; resolver: Resolver }[];

  constructor(
    private readonly name: string,
    server: string,
    locations: readonly { readonly location: string; readonly source: string }[],
  ) {
    this.resolvers = locations.map((l) => {
      const resolver = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: 1 });
      resolver.setServers([server]);
      resolver.setLocalAddress(l.source);
      return { location: l.location, resolver };
    });
  }

  start(): void {
    this.timer = setInterval(() => void this.sample(), SAMPLE_INTERVAL_MS);
  }

  markInjection(at: number): void {
    this.injectionAt = at;
  }

  get samples(): DnsSample[] {
    return this.taken.map(({ at, ...sample }) => ({ atMs: at - this.injectionAt, ...sample }));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** First time after the injection from which no location was answered `address` again. */
  droppedAfterMs(address: string): number | null {
    const after = this.samples.filter((s) => s.atMs >= 0);
    const lastWith = after.filter((s) => s.addresses.includes(address)).at(-1);
    const firstClean = after.find((s) => !s.error && (!lastWith || s.atMs > lastWith.atMs));
    if (!firstClean) return null;
    return lastWith ? firstClean.atMs : 0;
  }

  private async sample(): Promise<void> {
    const at = Date.now();
    await Promise.all(
      this.resolvers.map(async ({ location, resolver }) => {
        const started = Date.now();
        try {
          const addresses = await resolver.resolve4(this.name);
          this.taken.push({ at, location, addresses, tookMs: Date.now() - started });
        } catch (err) {
          this.taken.push({
            at,
            location,
            addresses: [],
            error: (err as Error).message,
            tookMs: Date.now() - started,
          });
        }
      }),
    );
  }
}
