/**
 * Shared output of every benchmark: one JSON document on stdout (machines), a short table on stderr
 * (people), and the JSON saved under bench-results/ so BENCHMARKS.md can cite the latest run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { percentile } from '../chaos/verdict';

export interface BenchResult {
  readonly name: string;
  readonly quick: boolean;
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly memoryGiB: number;
    readonly node: string;
  };
  readonly startedAt: string;
  readonly durationS: number;
  readonly results: unknown;
  /** Each target the issue sets, with the measured value and whether it holds. */
  readonly targets: readonly {
    readonly name: string;
    readonly target: string;
    readonly measured: string;
    readonly met: boolean;
  }[];
}

export function machineInfo(): BenchResult['machine'] {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
}

/** The fields every result starts with; `startedAt` is when the benchmark began. */
export function benchHeader(
  name: string,
  quick: boolean,
  startedAt: Date,
): Pick<BenchResult, 'name' | 'quick' | 'machine' | 'startedAt' | 'durationS'> {
  return {
    name,
    quick,
    machine: machineInfo(),
    startedAt: startedAt.toISOString(),
    durationS: round((Date.now() - startedAt.getTime()) / 1000, 1),
  };
}

export function progress(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

export function table(rows: readonly (readonly (string | number)[])[]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

export function emit(result: BenchResult, summaryRows: readonly (readonly (string | number)[])[]): void {
  const dir = path.resolve(__dirname, '..', '..', 'bench-results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, `${result.name}${result.quick ? '-quick' : ''}.json`),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  process.stderr.write(`\n${table(summaryRows)}\n\n`);
  if (result.targets.length > 0) {
    process.stderr.write(
      `${table([['target', 'wanted', 'measured', 'met'], ...result.targets.map((t) => [t.name, t.target, t.measured, t.met ? 'yes' : 'NO'])])}\n\n`,
    );
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Nearest-rank percentile (the chaos verdict's), NaN for no values so tables print a dash. */
export function percentileOf(values: readonly number[], p: number): number {
  return percentile(values, p) ?? NaN;
}
