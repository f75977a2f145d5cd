/**
 * The join answer's alternates as the real LB writes them: a two-region local stack (LB processes,
 * media servers, replicated dynalite), and a client that knows only two API URLs, the us-east-1 LB and
 * a dead one, and no region URLs. When us-east-1's LB and media server die, the rejoin can only go
 * through what the first answer recommended.
 */
import type { ServedEvent } from '../../../runtime/client/ApiClient';
import type { Client } from '../../../runtime/client/Client';
import { createNodeClient } from '../../../runtime/client/node';
import { startE2eStack, type E2eStack } from '../../e2e/stackHarness';
import { refusedUrl } from './httpServers';

jest.setTimeout(60_000);

let e2e: E2eStack | undefined;
let client: Client | undefined;

beforeAll(async () => {
  // Slot 8: its own addresses and ports, apart from the e2e suites' slots.
  e2e = await startE2eStack({ slot: 8, mediaPerRegion: 1 });
}, 90_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await e2e?.stop();
}, 30_000);

it("rejoins through the first answer's alternate when both configured API URLs are dead", async () => {
  if (!e2e) throw new Error('the stack did not start (see beforeAll)');
  const s = e2e;
  const lbUrl = (region: string) => s.state.regions.find((r) => r.name === region)!.lbUrl;
  const dead = await refusedUrl();
  client = createNodeClient({
    apiUrls: [lbUrl('us-east-1'), dead],
    timeouts: { attemptMs: 1_000, signalingPingMs: 300, signalingPongTimeoutMs: 900 },
    backoff: { baseMs: 50, capMs: 500, maxAttempts: 20 },
  });
  const session = client.joinRoom('alternates-room', await s.stack.devToken('alternates-room', 'alice'), {
    consume: false,
  });
  const warnings: string[] = [];
  session.on('warning', ({ message }) => warnings.push(message));
  const joined = await session.ready;
  expect(joined).toMatchObject({ region: 'us-east-1', apiUrl: lbUrl('us-east-1') });
  // The us-east-1 LB recommends the other region by the public URL that region's LB reported (at its
  // start, seconds before the stack counted as healthy).
  expect(client.api.urls).toEqual([lbUrl('us-east-1'), dead, lbUrl('eu-west-1')]);

  const served: ServedEvent[] = [];
  client.api.on('served', (e) => served.push(e));
  await s.control('POST', '/api/processes/us-east-1-lb/kill');
  await s.control('POST', `/api/processes/${joined.serverId}/kill`);
  expect(await session.next('reconnected')).toMatchObject({
    region: 'eu-west-1',
    apiUrl: lbUrl('eu-west-1'),
  });
  expect(served[0]!.attempts.map((a) => [a.url, a.outcome])).toEqual([
    [lbUrl('us-east-1'), 'network_error'],
    [dead, 'network_error'],
    [lbUrl('eu-west-1'), 'ok'],
  ]);
  expect(warnings).toEqual([]);
});
