/**
 * CDK entry point: reads the deployment config from context `multiRegion` (cdk.json, or
 * `-c multiRegion='{...}'`) and the target account, then creates every stack.
 *
 * A bad config is a user mistake: it prints the config's own message (field, value, fix) and exits 1,
 * without a stack trace. So is a config that still holds the docs' placeholder values (example
 * domains and zone ids, a placeholder account): it stops here, before `cdk deploy` creates anything.
 * `npm run synth` reviews the templates offline with those values (`-c allowPlaceholders=true`); it says
 * so, and the templates it writes carry a rule that CloudFormation refuses. That rule is what keeps a
 * deploy from being fooled: the CLI merges context from cdk.json, cdk.context.json and ~/.cdk.json as
 * well as `-c`, so the flag alone could come from a file nobody looks at.
 */
import { ConfigError, CONTEXT_KEY, parseAwsDeploymentConfig } from '../lib/config';
import { buildStacks, createCdkApp, PLACEHOLDER_ACCOUNT, PLACEHOLDER_RULE_ID } from '../lib/app';
import { ALLOW_PLACEHOLDERS_CONTEXT_KEY, placeholderFindings } from '../lib/placeholders';

const app = createCdkApp();

let config;
try {
  config = parseAwsDeploymentConfig(app.node.tryGetContext(CONTEXT_KEY));
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}

// `||`, not `??`: a blank value (`-c account=` or an empty CDK_DEFAULT_ACCOUNT) falls through too.
const account = String(
  app.node.tryGetContext('account') || process.env.CDK_DEFAULT_ACCOUNT || PLACEHOLDER_ACCOUNT,
);

const placeholders = placeholderFindings(config, account);
// `-c` passes strings; a context file may hold a real boolean.
const allowPlaceholders = [true, 'true'].includes(app.node.tryGetContext(ALLOW_PLACEHOLDERS_CONTEXT_KEY));
if (placeholders.length > 0) {
  const list = placeholders.map((p) => `  - ${p}`).join('\n');
  if (!allowPlaceholders) {
    console.error(
      `Refusing to build the stacks: the config still holds placeholder values from the docs.\n${list}\n` +
        'Set real values (cdk.json context "multiRegion", or -c multiRegion=...). To only review the ' +
        'templates offline with these values, run `npm run synth`.',
    );
    process.exit(1);
  }
  console.error(
    `Note: synthesized with placeholder values, for review only:\n${list}\n` +
      `Every template carries the rule ${PLACEHOLDER_RULE_ID}, so CloudFormation refuses to deploy them.`,
  );
}

buildStacks(app, config, { account, placeholders: allowPlaceholders ? placeholders : [] });
app.synth();
