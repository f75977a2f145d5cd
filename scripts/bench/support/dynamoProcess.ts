/**
 * Child process: a real dynalite with the table created, listening twice. Requests on the counted
 * endpoint (the one the LB is given) are counted by operation and item kind; the admin endpoint (the
 * bench's own heartbeats and scene setting) serves the same database uncounted. Speaks over IPC:
 *   → { type: 'ready', endpoint, adminEndpoint, tableName }
 *   ← { type: 'counts' }  → { type: 'counts', counts }
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTableInput } from '../../../runtime/store/schema';
import { classifyDynamoRequest, countKey, type RequestCounts } from './dynamoRequests';

// dynalite ships no types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite = require('dynalite') as (opts: Record<string, number>) => http.Server;

const HOST = '127.0.0.1';

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return `http://${HOST}:${(server.address() as AddressInfo).port}`;
}

async function main(): Promise<void> {
  const region = process.env.REGION ?? 'eu-west-1';
  const tableName = process.env.TABLE_NAME ?? 'bench-rooms';
  const counted = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const handler = counted.listeners('request')[0] as http.RequestListener;
  const admin = http.createServer(handler);
  const counts: RequestCounts = {};

  // Runs before dynalite's own listener; both read the same body stream (flowing starts next tick).
  counted.prependListener('request', (req: http.IncomingMessage) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = countKey(
        classifyDynamoRequest(
          req.headers['x-amz-target'] as string | undefined,
          Buffer.concat(chunks).toString(),
        ),
      );
      counts[key] = (counts[key] ?? 0) + 1;
    });
  });

  const endpoint = await listen(counted);
  const adminEndpoint = await listen(admin);
  const client = new DynamoDBClient({
    region,
    endpoint: adminEndpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  await client.send(new CreateTableCommand(createTableInput(tableName)));
  client.destroy();

  process.on('message', (msg: { type?: string }) => {
    if (msg.type === 'counts') process.send!({ type: 'counts', counts: { ...counts } });
  });
  // The bench going away (crash included) ends this process too.
  process.on('disconnect', () => process.exit(0));
  process.send!({ type: 'ready', endpoint, adminEndpoint, tableName });
}

void main().catch((err: unknown) => {
  console.error('dynamo bench process failed:', err);
  process.exit(1);
});
