/**
 * How both services read their environment: one zod schema per service (lbEnvironment.ts,
 * mediaEnvironment.ts), parsed once at start, and one error that names every bad variable, its value
 * and what to set instead, without ever showing a secret. Producers (the CDK constructs, the local
 * stack, the benches, the tests) build an environment with the service's own writer next to its
 * reader, never by spelling variable names themselves.
 */
import { z } from 'zod';
import { KeySetError, parseKeySet } from './tokens';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `LOG_LEVEL`, read the same way by both services. */
export const logLevelVariable = z.enum(LOG_LEVELS).default('info');

/** A bad environment: every problem, one per line, each naming its variable. */
export class EnvironmentError extends Error {
  constructor(
    readonly service: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid ${service} environment:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'EnvironmentError';
  }
}

/** A key set variable (JSON, see tokens.ts): parsed into keys, or an issue that never shows a key. */
export function keySetVariable(what: string) {
  return z
    .string()
    .min(1, `is required (${what}, JSON)`)
    .transform((text, ctx) => {
      try {
        return parseKeySet(text, what);
      } catch (err) {
        if (!(err instanceof KeySetError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.detail });
        return z.NEVER;
      }
    });
}

/** Parses `env` with `schema`, or throws an EnvironmentError listing every bad variable. */
export function readEnvironment<S extends z.ZodType>(
  service: string,
  schema: S,
  env: Readonly<Record<string, string | undefined>>,
  secrets: ReadonlySet<string>,
): z.output<S> {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  throw new EnvironmentError(
    service,
    parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'environment');
      const value = env[name];
      const shown =
        value === undefined ? 'unset' : secrets.has(name) ? 'set, not shown' : `got ${JSON.stringify(value)}`;
      return `${name}: ${issue.message} (${shown})`;
    }),
  );
}

/** Drops the unset entries: what a writer returns is exactly the variables to set. */
export function definedVariables(
  vars: Record<string, string | number | boolean | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(vars)) if (value !== undefined) out[name] = String(value);
  return out;
}
