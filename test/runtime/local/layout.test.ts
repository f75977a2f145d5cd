/** The local stack's process layout: ids, URLs and ports from the topology, without starting anything. */
import { parseDeploymentConfig } from '../../../lib/config';
import { regionLayout, runningRegions } from '../../../runtime/local/layout';

const local = parseDeploymentConfig({}).local;

test('a reduced stack runs the first N configured regions, a full one all of them', () => {
  expect(runningRegions(local, 2).map((r) => r.name)).toEqual(local.regions.slice(0, 2).map((r) => r.name));
  expect(runningRegions(local)).toEqual(local.regions);
});

test('every region has its LB on its own address and media servers whose ports never overlap', () => {
  const regions = runningRegions(local, 2);
  const layout = regionLayout({
    regions,
    lbPort: 8080,
    domain: 'mr.test',
    backupDomain: 'mr-backup.test',
    mediaPortBase: 9000,
    mediaPerRegion: 3,
    turnPort: 3478,
    turnTlsPort: 5349,
    dynamoEndpoints: Object.fromEntries(regions.map((r) => [r.name, `http://${r.address}:8000`])),
  });
  const [first] = layout;
  expect(first).toMatchObject({
    name: regions[0]!.name,
    address: regions[0]!.address,
    lbUrl: `http://${regions[0]!.address}:8080`,
    apiUrl: `http://${regions[0]!.name}.api.mr.test:8080`,
    backupApiUrl: `http://${regions[0]!.name}.api-backup.mr-backup.test:8080`,
    dynamoEndpoint: `http://${regions[0]!.address}:8000`,
    turn: { host: regions[0]!.address, port: 3478, tlsPort: 5349 },
  });
  expect(first!.media.map((m) => m.id)).toEqual([0, 1, 2].map((i) => `${regions[0]!.name}-m${i}`));
  expect(first!.media.map((m) => m.signalingPort)).toEqual([9000, 9001, 9002]);

  // Signaling ports and every server's RTC range, as [min, max] intervals: none may intersect.
  const ranges = first!.media.flatMap((m) => [
    [m.signalingPort, m.signalingPort],
    [m.rtcMinPort, m.rtcMaxPort],
  ]);
  for (const [i, [lo, hi]] of ranges.entries()) {
    expect(lo).toBeLessThanOrEqual(hi!);
    for (const [otherLo, otherHi] of ranges.slice(i + 1)) {
      expect(hi! < otherLo! || otherHi! < lo!).toBe(true);
    }
  }
  // Every region uses the same ports on its own address.
  expect(layout[1]!.media.map((m) => m.rtcMinPort)).toEqual(first!.media.map((m) => m.rtcMinPort));
});
