/**
 * The LB's config from its environment (the contract and its reader: runtime/protocol/lbEnvironment.ts).
 * A bad value stops the process with an EnvironmentError naming every bad variable.
 */
import { readLbEnvironment } from '../protocol/lbEnvironment';
import type { LogLevel } from '../protocol/environment';
import { lbConfig, type LbConfig } from './config';

export interface LbEnv {
  readonly config: LbConfig;
  readonly tableName: string;
  readonly dynamoEndpoint: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly logLevel: LogLevel;
}

export function readLbEnv(env: Readonly<Record<string, string | undefined>>): LbEnv {
  const e = readLbEnvironment(env);
  return {
    config: lbConfig({
      region: e.region,
      publicApiUrl: e.publicApiUrl,
      ...(e.backupApiUrl ? { backupApiUrl: e.backupApiUrl, backupDomain: e.backupDomain } : {}),
      ...(e.addressApiUrl ? { addressApiUrl: e.addressApiUrl } : {}),
      joinTokenKeys: e.joinTokenKeys,
      mediaTokenKeys: e.mediaTokenKeys,
      corsOrigins: e.corsOrigins,
      trustProxyHops: e.trustProxyHops,
      turn: e.turn,
    }),
    tableName: e.tableName,
    dynamoEndpoint: e.dynamoEndpoint,
    host: e.host,
    port: e.port,
    logLevel: e.logLevel,
  };
}
