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
 * A JSON object shaped like `template` (field name → arbitrary of its JSON text). Most fields keep a
 * template value, so cases get deep enough to reach the code behind the schema; each field may also be
 * dropped or replaced by hostile JSON, and now and then a hostile extra key (prototype keys first) joins.
 */
export function mutatedObject(template: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<string> {
  const fields = Object.entries(template).map(([key, valid]) =>
    fc.oneof(
      { arbitrary: valid.map((v): [string, string] => [key, v]), weight: 4 },
      { arbitrary: fc.constant(null), weight: 1 },
      { arbitrary: hostileJson.map((v): [string, string] => [key, v]), weight: 1 },
    ),
  );
  const extra = fc.tuple(fc.oneof(fc.constantFrom(...PROTOTYPE_KEYS), hostileString), hostileJson);
  const extras = fc.oneof(
    { arbitrary: fc.constant([]), weight: 3 },
    { arbitrary: fc.array(extra, { minLength: 1, maxLength: 2 }), weight: 1 },
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

type MutationKind = 'replace' | 'drop' | 'addKey';
interface Mutation {
  readonly at: number;
  readonly kind: MutationKind;
  readonly value: string;
  readonly key: string;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom<MutationKind>('replace', 'replace', 'drop', 'addKey'),
  value: hostileJson,
  key: fc.oneof(fc.constantFrom(...PROTOTYPE_KEYS), hostileString),
});

/**
 * `template` as JSON text with 0-2 point mutations at random nodes (a value replaced by hostile JSON,
 * a key dropped, a hostile key added): one wrong thing deep inside an otherwise valid structure, which
 * is what gets past the schema into the code behind it.
 */
export function pointMutated(template: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.tuple(template, fc.array(mutation, { maxLength: 2 })).map(([value, mutations]) => {
    const count = countNodes(value);
    const byNode = new Map(mutations.map((m) => [m.at % count, m]));
    return serializeMutated(value, byNode, { next: 0 }) ?? 'null';
  });
}

function countNodes(value: unknown): number {
  if (Array.isArray(value)) return 1 + value.reduce<number>((n, v) => n + countNodes(v), 0);
  if (value !== null && typeof value === 'object')
    return 1 + Object.values(value).reduce<number>((n, v) => n + countNodes(v), 0);
  return 1;
}

function serializeMutated(
  value: unknown,
  mutations: Map<number, Mutation>,
  counter: { next: number },
): string | undefined {
  const index = counter.next++;
  const m = mutations.get(index);
  if (m?.kind === 'replace') {
    counter.next += countNodes(value) - 1;
    return m.value;
  }
  if (m?.kind === 'drop') {
    counter.next += countNodes(value) - 1;
    return undefined;
  }
  if (Array.isArray(value)) {
    const items = value.map((v) => serializeMutated(v, mutations, counter)).filter((v) => v !== undefined);
    if (m?.kind === 'addKey') items.push(m.value);
    return `[${items.join(',')}]`;
  }
  if (value !== null && typeof value === 'object') {
    const fields: Array<[string, string]> = [];
    for (const [k, v] of Object.entries(value)) {
      const text = serializeMutated(v, mutations, counter);
      if (text !== undefined) fields.push([k, text]);
    }
    if (m?.kind === 'addKey') fields.push([m.key, m.value]);
    return objectText(fields);
  }
  return JSON.stringify(value);
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
