/**
 * The client SDK for Node: everything in index.ts plus the Node platform, whose HTTP and WebSocket
 * connections use the configured source address and DNS servers.
 */
import { Client, type ClientOptions } from './Client';
import { type ClientConfig, type ClientConfigInput, parseClientConfig } from './config';
import { nodePlatform } from './nodePlatform';

export * from './index';
export { nodePlatform } from './nodePlatform';
export { ZoneDnsResolver } from './DnsResolver';

export function createNodeClient(
  config: ClientConfigInput | ClientConfig,
  random?: () => number,
  options: Pick<ClientOptions, 'detectorClock'> = {},
): Client {
  const parsed = parseClientConfig(config);
  return new Client(parsed, { platform: nodePlatform(parsed), random, ...options });
}
