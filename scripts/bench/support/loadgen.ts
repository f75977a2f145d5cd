/**
 * A closed-loop HTTP load generator: `concurrency` virtual clients, each sending its next request as
 * soon as the previous answer has been read, over keep-alive connections (one per client), until the
 * duration or the request budget runs out. Latency is request start to the last byte of the answer.
 */
import * as http from 'node:http';
import { percentileOf, round } from '../report';

export interface HttpRequestSpec {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

export interface LoadRun {
  readonly requests: number;
  readonly byStatus: Record<string, number>;
  readonly latenciesMs: number[];
  readonly wallMs: number;
  /** A sample answer per non-2xx status, for the report (a bench that only counts 503s explains nothing). */
  readonly sampleErrors: Record<string, string>;
}

export interface LoadOptions {
  readonly baseUrl: string;
  readonly concurrency: number;
  readonly durationMs: number;
  /** Upper bound on requests (the token budget); the run stops at whichever comes first. */
  readonly maxRequests: number;
  /** The i-th request; null ends that client's loop. */
  readonly next: (i: number) => HttpRequestSpec | null;
}

function send(agent: http.Agent, url: URL, spec: HttpRequestSpec): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: spec.method,
        path: spec.path,
        headers: {
          ...spec.headers,
          ...(spec.body !== undefined
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(spec.body) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(spec.body);
  });
}

export async function closedLoop(opts: LoadOptions): Promise<LoadRun> {
  const url = new URL(opts.baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const latenciesMs: number[] = [];
  const byStatus: Record<string, number> = {};
  const sampleErrors: Record<string, string> = {};
  let issued = 0;
  const t0 = performance.now();
  const deadline = t0 + opts.durationMs;

  const client = async () => {
    while (performance.now() < deadline && issued < opts.maxRequests) {
      const spec = opts.next(issued++);
      if (!spec) return;
      const start = performance.now();
      let status: string;
      try {
        const answer = await send(agent, url, spec);
        status = String(answer.status);
        if (answer.status >= 300) sampleErrors[status] ??= answer.body.slice(0, 300);
      } catch (err) {
        status = `network:${(err as NodeJS.ErrnoException).code ?? 'error'}`;
        sampleErrors[status] ??= (err as Error).message;
      }
      latenciesMs.push(performance.now() - start);
      byStatus[status] = (byStatus[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, client));
  const wallMs = performance.now() - t0;
  agent.destroy();
  return { requests: latenciesMs.length, byStatus, latenciesMs, wallMs, sampleErrors };
}

export interface LoadSummary {
  readonly requests: number;
  readonly ok: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly byStatus: Record<string, number>;
}

export function summarizeLoad(run: LoadRun): LoadSummary {
  const ok = Object.entries(run.byStatus)
    .filter(([s]) => /^2\d\d$/.test(s))
    .reduce((sum, [, n]) => sum + n, 0);
  return {
    requests: run.requests,
    ok,
    perSecond: round(ok / (run.wallMs / 1000), 1),
    p50Ms: round(percentileOf(run.latenciesMs, 50), 2),
    p99Ms: round(percentileOf(run.latenciesMs, 99), 2),
    byStatus: run.byStatus,
  };
}
