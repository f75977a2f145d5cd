/**
 * CDK entry point: reads the deployment config from context `multiRegion` (cdk.json, or
 * `-c multiRegion='{...}'`) and the target account, then creates every stack.
 *
 * A bad config is a user mistake: it prints the config's own message (field, value, fix) and exits 1,
 * without a stack trace.
 */
import { ConfigError, CONTEXT_KEY, parseDeploymentConfig } from '../lib/config';
import { buildStacks, createCdkApp, PLACEHOLDER_ACCOUNT } from '../lib/app';

const app = createCdkApp();

let config;
try {
  config = parseDeploymentConfig(app.node.tryGetContext(CONTEXT_KEY));
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}

// `||`, not `??`: a blank value (`-c account=` or an empty CDK_DEFAULT_ACCOUNT) falls through too.
const account = String(
  app.node.tryGetContext('account') || process.env.CDK_DEFAULT_ACCOUNT || PLACEHOLDER_ACCOUNT,
);
buildStacks(app, config, { account });
app.synth();
