/**
 * Hostile inputs for the fuzz suites, and the runner that prints each property's run count.
 *
 * Inputs are built as JSON *text*, not as objects: a `__proto__` key, a lone surrogate escape or a
 * nesting 20,000 levels deep cannot survive a round trip through JSON.stringify of a JS object, and
 * those are exactly the inputs a server must meet as an attacker would send them.
 */
import fc from 'fast-check';

/** Runs per property: the issue's floor for CI. */
export const FUZZ_RUNS = 1000;
/** One case must be answered within this; a slower answer counts as a hang. */
export const CASE_TIMEOUT_MS = 5_000;

/**
 * Checks `property` for FUZZ_RUNS runs and prints `fuzz <name>: N runs, F failures` (jest shows console
 * output); throws fast-check's report (seed, path, counterexample) when a run failed.
 */
export async function checkProperty<T>(
  name: string,
  property: fc.IAsyncPropertyWithHooks<T>,
  params: fc.Parameters<T> = {},
): Promise<void> {
  const details = await fc.check(property, { numRuns: FUZZ_RUNS, ...params });
  console.log(`fuzz ${name}: ${details.numRuns} runs, ${details.failed ? 1 : 0} failures`);
  if (details.failed) {
    const cause =
      details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`${fc.defaultReportMessage(details)}\nFailure: ${cause}`);
  }
}

/** Rejects when `work` takes longer than `ms`, naming what hung. */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Keys that poison objects built by assignment, or collide with Object.prototype members. */
export const PROTOTYPE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
];

const SPECIAL_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  '\udfff',
  'a\ud83d',
  '\ufeff',
  '\u202e',
  '../../../etc/passwd',
  '%00',
  '%ZZ',
  '${jndi:ldap://x}',
  'null',
  'NaN',
  '-1',
  'us-east-1',
  ...PROTOTYPE_KEYS,
];

/** Strings an attacker would try: unicode of every kind (lone surrogates included), specials, huge. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string({ maxLength: 40 }), weight: 3 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 3 },
  { arbitrary: fc.constantFrom(...SPECIAL_STRINGS), weight: 3 },
  { arbitrary: fc.integer({ min: 129, max: 70_000 }).map((n) => 'x'.repeat(n)), weight: 1 },
);

/** A JSON string literal; JSON.stringify escapes lone surrogates, which JSON.parse turns back into them. */
const stringLiteral = hostileString.map((s) => JSON.stringify(s));

const numberLiteral = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  fc.constantFrom('1e309', '-1e309', '-0', '1e-400', '123456789012345678901234567890', '0.1e1'),
);

const keyLiteral = fc.oneof(
  { arbitrary: fc.constantFrom(...PROTOTYPE_KEYS).map((k) => JSON.stringify(k)), weight: 2 },
  { arbitrary: stringLiteral, weight: 3 },
);

/** Nesting far beyond any real message, to find recursion without a bound. */
export const deepJson: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 20, max: 30_000 }), fc.boolean())
  .map(([depth, arrays]) =>
    arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
  );

/** Any JSON text, hostile at every level (keys included). */
export const hostileJson: fc.Arbitrary<string> = fc.letrec<{ node: string }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: fc.constantFrom('null', 'true', 'false'), weight: 2 },
    { arbitrary: numberLiteral, weight: 2 },
    { arbitrary: stringLiteral, weight: 3 },
    { arbitrary: deepJson, weight: 1 },
    {
      arbitrary: fc
        .array(fc.tuple(keyLiteral, tie('node')), { maxLength: 4 })
        .map((entries) => `{${entries.map(([k, v]) => `${k}:${v}`).join(',')}}`),
      weight: 2,
    },
    { arbitrary: fc.array(tie('node'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`), weight: 2 },
  ),
})).node;

/** A JSON object text with the given fields (values are JSON text), plus hostile extras when asked. */
export function objectText(fields: Array<[string, string]>): string {
  return `{${fields.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

/**
 * A JSON object shaped like `template` (field name → arbitrary of its JSON text) where each field may be
 * dropped, kept, replaced by hostile JSON, or joined by a hostile extra key (prototype keys first).
 */
export function mutatedObject(template: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<string> {
  const fields = Object.entries(template).map(([key, valid]) =>
    fc.oneof(
      fc.constant(null),
      valid.map((v): [string, string] => [key, v]),
      hostileJson.map((v): [string, string] => [key, v]),
    ),
  );
  const extras = fc.array(
    fc.tuple(fc.oneof(fc.constantFrom(...PROTOTYPE_KEYS), hostileString), hostileJson),
    {
      maxLength: 2,
    },
  );
  return fc
    .tuple(fc.tuple(...fields), extras)
    .map(([kept, extra]) =>
      objectText([
        ...kept.filter((f): f is [string, string] => f !== null),
        ...extra.map(([k, v]): [string, string] => [k, v]),
      ]),
    );
}

/** Bytes that are not UTF-8 (an invalid text frame) or not text at all. */
export const invalidUtf8: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.uint8Array({ maxLength: 32 }),
    fc.constantFrom([0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82]),
  )
  .map(([prefix, bad]) => Buffer.concat([Buffer.from(prefix.map((b) => b & 0x7f)), Buffer.from(bad)]));

/**
 * Percent-encodes every code point outside the unreserved set as its WTF-8 bytes, so a lone surrogate
 * travels as the (invalid UTF-8) bytes ED A0 80 instead of making encodeURIComponent throw.
 */
export function percentEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    if (/^[A-Za-z0-9_.~-]$/.test(ch)) {
      out += ch;
      continue;
    }
    const cp = ch.codePointAt(0)!;
    const bytes =
      cp < 0x80
        ? [cp]
        : cp < 0x800
          ? [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)]
          : cp < 0x10000
            ? [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)]
            : [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
    out += bytes.map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out;
}
