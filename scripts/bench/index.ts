/**
 * `npm run bench -- <name> [--quick]`: runs one benchmark and prints its JSON (stdout) and a short
 * table (stderr). Methods and the latest figures are in BENCHMARKS.md.
 */
import { parseArgs } from 'node:util';

// These tools run on the developer's Node; the AWS SDK's notice about its future Node floor (the
// service images run Node 22) would land in the middle of the progress lines.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const BENCHES = {
  join: () => import('./join'),
  failover: () => import('./failover'),
  placement: () => import('./placement'),
  edge: () => import('./edge'),
  media: () => import('./media'),
  herd: () => import('./herd'),
  cascade: () => import('./cascade'),
} as const;

type BenchName = keyof typeof BENCHES;

const USAGE = `usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [--quick]`;

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: { quick: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const name = parsed.positionals[0];
  if (parsed.values.help) {
    console.log(USAGE);
    return;
  }
  if (!name || !(name in BENCHES) || parsed.positionals.length > 1) {
    console.error(
      `error: ${name ? `unknown benchmark "${parsed.positionals.join(' ')}"` : 'name a benchmark'}\n${USAGE}`,
    );
    process.exit(2);
  }
  const bench = await BENCHES[name as BenchName]();
  await bench.run({ quick: parsed.values.quick ?? false });
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
