/**
 * The LB's remote probe asks another region's LB through each of its URLs in turn while a URL cannot
 * even be reached (its name does not resolve: a failed primary zone), and stops at the first answer or
 * timeout, so a dead DNS zone does not make a live server look gone.
 */
import { ServerProbe } from '../../../runtime/lb/ServerProbe';
import { mediaServer } from './lbHarness';

function probeWith(urls: string[], answer: (url: string) => Promise<Response>) {
  const asked: string[] = [];
  const probe = new ServerProbe({
    region: 'eu-west-1',
    regionApiUrls: () => urls,
    fetch: (async (input: string | URL | Request) => {
      const url = String(input);
      asked.push(url);
      return answer(url);
    }) as typeof fetch,
  });
  return { probe, asked };
}

const alive = (id: string) => new Response(JSON.stringify({ serverId: id, alive: true }), { status: 200 });
const unresolvable = () => Promise.reject(new TypeError('fetch failed: getaddrinfo ENOTFOUND'));

test('a primary name that does not resolve is followed by the backup name', async () => {
  const { probe, asked } = probeWith(
    ['https://us-east-1.api.example.com', 'https://us-east-1.api-backup.example.net'],
    async (url) => (url.includes('api-backup') ? alive('us-a') : unresolvable()),
  );
  expect(await probe.check(mediaServer('us-a', 'us-east-1'))).toMatchObject({ verdict: 'alive' });
  expect(asked).toEqual([
    'https://us-east-1.api.example.com/v1/servers/us-a/health',
    'https://us-east-1.api-backup.example.net/v1/servers/us-a/health',
  ]);
});

test('an answer ends the probe: a 503 through the first URL is not retried elsewhere', async () => {
  const { probe, asked } = probeWith(
    ['https://us-east-1.api.example.com', 'https://us-east-1.api-backup.example.net'],
    async () => new Response('{}', { status: 503 }),
  );
  expect(await probe.check(mediaServer('us-a', 'us-east-1'))).toMatchObject({
    verdict: 'gone',
    detail: 'answered 503',
  });
  expect(asked).toHaveLength(1);
});

test('every URL unreachable, or none known, is gone', async () => {
  const { probe } = probeWith(['https://a.example.com', 'https://b.example.net'], unresolvable);
  expect(await probe.check(mediaServer('us-a', 'us-east-1'))).toMatchObject({
    verdict: 'gone',
    detail: 'unreachable',
  });
  const none = probeWith([], unresolvable).probe;
  expect(await none.check(mediaServer('us-b', 'us-east-1'))).toMatchObject({ verdict: 'gone' });
});
