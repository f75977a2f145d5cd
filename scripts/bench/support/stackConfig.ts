/**
 * The three-region local stack a benchmark starts for itself: addresses 127.0.<octet>1.1 to
 * 127.0.<octet>3.1 and ports offset by `portBase`, so it runs beside a developer's `npm start` and beside
 * another benchmark's stack, with fast health checks (a run takes seconds, not the AWS interval's minute).
 */
import { parseDeploymentConfig, type DeploymentConfig } from '../../../lib/config';

export interface BenchStackOptions {
  /** Second octet of the region addresses' third byte: 4 gives 127.0.41.1, 127.0.42.1, 127.0.43.1. */
  readonly addressOctet: number;
  /** Added to the default ports (LB 8080, DynamoDB 8000, media 9000, DNS 5353/5354, dashboard 3000). */
  readonly portBase: number;
  readonly healthCheckIntervalSeconds: number;
  readonly dnsTtlSeconds: number;
}

export function benchStackConfig(o: BenchStackOptions): DeploymentConfig {
  return parseDeploymentConfig({
    local: {
      addresses: {
        'us-east-1': `127.0.${o.addressOctet}1.1`,
        'eu-west-1': `127.0.${o.addressOctet}2.1`,
        'ap-southeast-1': `127.0.${o.addressOctet}3.1`,
      },
      lbPort: o.portBase + 8080,
      dynamoPort: o.portBase + 8000,
      mediaPortBase: o.portBase + 9000,
      mediaServersPerRegion: 1,
      dnsPort: o.portBase + 5353,
      backupDnsPort: o.portBase + 5354,
      dashboardPort: o.portBase + 3000,
      dnsTtlSeconds: o.dnsTtlSeconds,
      healthCheckIntervalSeconds: o.healthCheckIntervalSeconds,
    },
  });
}
