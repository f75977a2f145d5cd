/**
 * A real dynalite over HTTP on a free loopback port, with the table created as the CDK declares it.
 * One per test file: suites run in parallel and must not share state.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AddressInfo } from 'node:net';
import { createTableInput } from '../../runtime/store/schema';

// dynalite ships no types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite = require('dynalite') as (opts: {
  createTableMs: number;
  deleteTableMs: number;
  updateTableMs: number;
}) => import('node:http').Server;

export const TEST_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface TestDynamo {
  readonly endpoint: string;
  readonly region: string;
  readonly tableName: string;
  close(): Promise<void>;
}

export async function startDynalite(
  opts: { tableName?: string; region?: string; createTable?: boolean } = {},
): Promise<TestDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const region = opts.region ?? 'eu-west-1';
  const tableName = opts.tableName ?? 'test-rooms';
  if (opts.createTable !== false) {
    const client = new DynamoDBClient({ region, endpoint, credentials: TEST_CREDENTIALS });
    await client.send(new CreateTableCommand(createTableInput(tableName)));
    client.destroy();
  }
  return {
    endpoint,
    region,
    tableName,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
