/** Route 53's answer rules on the records the CDK declares, without sockets. */
import {
  answerQuestion,
  backupZone,
  locateClient,
  primaryZone,
  type QueryContext,
} from '../../../runtime/local/dnsRecords';

const regions = [
  { name: 'us-east-1', address: '127.0.1.1' },
  { name: 'eu-west-1', address: '127.0.2.1' },
  { name: 'ap-southeast-1', address: '127.0.3.1' },
];
const zoneOptions = { ttlSeconds: 5, regions, serverAddress: '127.0.0.1' };
const primary = primaryZone({ ...zoneOptions, domain: 'mr.test' });
const backup = backupZone({ ...zoneOptions, domain: 'mr-backup.test' });

function ctx(location: string, unhealthy: string[] = [], random = () => 0): QueryContext {
  return { location, isHealthy: (r) => !unhealthy.includes(r), random };
}

const addresses = (answer: ReturnType<typeof answerQuestion>) =>
  answer.answers.map((a) => (a as { data: unknown }).data);

test('a client is located by the /24 of its source address, else at the fallback', () => {
  expect(locateClient('127.0.2.100', regions, 'us-east-1')).toBe('eu-west-1');
  expect(locateClient('::ffff:127.0.3.7', regions, 'us-east-1')).toBe('ap-southeast-1');
  expect(locateClient('127.0.0.1', regions, 'eu-west-1')).toBe('eu-west-1');
  expect(locateClient('127.0.9.100', regions, 'us-east-1')).toBe('us-east-1');
});

test('latency records answer the nearest healthy region only', () => {
  const q = { name: 'api.mr.test', type: 'A' };
  expect(addresses(answerQuestion(primary, q, ctx('ap-southeast-1')))).toEqual(['127.0.3.1']);
  // Singapore is nearer Ireland than Virginia.
  expect(addresses(answerQuestion(primary, q, ctx('ap-southeast-1', ['ap-southeast-1'])))).toEqual([
    '127.0.2.1',
  ]);
  expect(addresses(answerQuestion(primary, q, ctx('eu-west-1', ['eu-west-1'])))).toEqual(['127.0.1.1']);
  expect(addresses(answerQuestion(primary, q, ctx('eu-west-1', ['eu-west-1', 'us-east-1'])))).toEqual([
    '127.0.3.1',
  ]);
  // None healthy: all count as healthy, so the nearest again.
  const all = regions.map((r) => r.name);
  expect(addresses(answerQuestion(primary, q, ctx('eu-west-1', all)))).toEqual(['127.0.2.1']);
});

test('weighted records pick one healthy record by weight', () => {
  const q = { name: 'api-backup.mr-backup.test', type: 'A' };
  expect(
    addresses(
      answerQuestion(
        backup,
        q,
        ctx('us-east-1', [], () => 0),
      ),
    ),
  ).toEqual(['127.0.1.1']);
  expect(
    addresses(
      answerQuestion(
        backup,
        q,
        ctx('us-east-1', [], () => 0.5),
      ),
    ),
  ).toEqual(['127.0.2.1']);
  expect(
    addresses(
      answerQuestion(
        backup,
        q,
        ctx('us-east-1', [], () => 0.99),
      ),
    ),
  ).toEqual(['127.0.3.1']);
  expect(
    addresses(
      answerQuestion(
        backup,
        q,
        ctx('us-east-1', ['us-east-1'], () => 0),
      ),
    ),
  ).toEqual(['127.0.2.1']);
  expect(
    addresses(
      answerQuestion(
        backup,
        q,
        ctx('us-east-1', ['us-east-1', 'eu-west-1'], () => 0),
      ),
    ),
  ).toEqual(['127.0.3.1']);
});

test('negative answers: NODATA for other types, NXDOMAIN for missing names, unauthoritative outside the zone', () => {
  expect(answerQuestion(primary, { name: 'api.mr.test', type: 'AAAA' }, ctx('us-east-1'))).toMatchObject({
    rcode: 'NOERROR',
    authoritative: true,
    answers: [],
    authorities: [{ type: 'SOA', name: 'mr.test' }],
  });
  expect(answerQuestion(primary, { name: 'x.mr.test', type: 'A' }, ctx('us-east-1'))).toMatchObject({
    rcode: 'NXDOMAIN',
    authoritative: true,
  });
  expect(answerQuestion(primary, { name: 'mr.test.example', type: 'A' }, ctx('us-east-1'))).toMatchObject({
    rcode: 'NXDOMAIN',
    authoritative: false,
    authorities: [],
  });
  // ANY at the apex: the SOA and the NS.
  const any = answerQuestion(primary, { name: 'MR.test.', type: 'ANY' }, ctx('us-east-1'));
  expect(any.answers.map((a) => a.type)).toEqual(['SOA', 'NS']);
});

test('the backup zone names every region itself, without health checks, and knows nothing of the primary', () => {
  for (const r of regions) {
    const q = { name: `${r.name}.api-backup.mr-backup.test`, type: 'A' };
    expect(addresses(answerQuestion(backup, q, ctx('us-east-1', [r.name])))).toEqual([r.address]);
  }
  expect(
    answerQuestion(backup, { name: 'us-east-1.api.mr.test', type: 'A' }, ctx('us-east-1')),
  ).toMatchObject({
    rcode: 'NXDOMAIN',
    authoritative: false,
  });
});
