import { ClientConfigError, parseClientConfig } from '../../../runtime/client/config';

function problems(raw: unknown): string[] {
  try {
    parseClientConfig(raw);
  } catch (err) {
    if (err instanceof ClientConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

describe('client config', () => {
  it('fills defaults and normalizes URLs', () => {
    const cfg = parseClientConfig({
      apiUrls: ['https://api.example.com/', 'https://api-backup.example.net'],
    });
    expect(cfg.apiUrls).toEqual(['https://api.example.com', 'https://api-backup.example.net']);
    expect(cfg.timeouts).toEqual({
      attemptMs: 3_000,
      hedgeMs: 1_000,
      requestMs: 10_000,
      signalingPingMs: 500,
      signalingPongTimeoutMs: 3_000,
      primaryReprobeMs: 15_000,
    });
    expect(cfg.detection).toEqual({
      statsIntervalMs: 250,
      mediaStallMs: 500,
      pingMissMs: 500,
      switchHedgeMs: 250,
    });
    expect(cfg.backoff).toEqual({ baseMs: 500, capMs: 10_000, maxAttempts: 30, joinAttempts: 3 });
    // No region URLs: nothing to elect.
    expect(cfg.rttElection).toBe(false);
  });

  it('turns failure detection off on request and refuses a zero threshold', () => {
    expect(parseClientConfig({ apiUrls: ['https://a.example.com'], detection: false }).detection).toBe(false);
    expect(problems({ apiUrls: ['https://a.example.com'], detection: { mediaStallMs: 0 } })).toEqual([
      expect.stringMatching(/^detection/),
    ]);
  });

  it('enables the RTT election when region URLs are given, unless disabled', () => {
    const regionUrls = { 'eu-west-1': 'https://eu-west-1.api.example.com' };
    expect(parseClientConfig({ apiUrls: ['https://a.example.com'], regionUrls }).rttElection).toMatchObject({
      samples: 3,
    });
    expect(
      parseClientConfig({ apiUrls: ['https://a.example.com'], regionUrls, rttElection: false }).rttElection,
    ).toBe(false);
  });

  it('accepts a single DNS server or a per-zone map', () => {
    expect(
      parseClientConfig({ apiUrls: ['http://api.mr.test:8080'], dns: { server: '127.0.0.1:5353' } }).dns,
    ).toEqual({
      servers: { '*': '127.0.0.1:5353' },
      maxCacheSeconds: 60,
    });
    const zoned = parseClientConfig({
      apiUrls: ['http://api.mr.test:8080'],
      dns: {
        servers: { 'api-backup.mr.test': '127.0.0.1:5354', 'MR.test': '127.0.0.1:5353' },
        localAddress: '127.0.2.100',
      },
    });
    expect(zoned.dns?.servers).toEqual({
      'api-backup.mr.test': '127.0.0.1:5354',
      'mr.test': '127.0.0.1:5353',
    });
    expect(zoned.dns?.localAddress).toBe('127.0.2.100');
  });

  it('names every bad field', () => {
    expect(
      problems({
        apiUrls: ['ftp://api.example.com', 'https://ok.example.com'],
        timeouts: { attemptMs: 0 },
        backoff: { baseMs: 5_000, capMs: 1_000 },
        dns: { server: 'localhost' },
        localAddress: 'somewhere',
        extra: 1,
      }),
    ).toEqual([
      expect.stringMatching(/^apiUrls\[0\]: must be an http\(s\) base URL/),
      expect.stringMatching(/^timeouts\.attemptMs: /),
      'backoff.baseMs: baseMs must not exceed capMs',
      expect.stringMatching(/^dns\.server: must be "ipv4:port"/),
      'localAddress: must be an IPv4 address',
      expect.stringMatching(/^\(root\): Unrecognized key: "extra"/),
    ]);
  });

  it('takes the ICE transport policy: all by default, relay to force the TURN relay', () => {
    expect(parseClientConfig({ apiUrls: ['https://a.example.com'] }).iceTransportPolicy).toBe('all');
    expect(
      parseClientConfig({ apiUrls: ['https://a.example.com'], iceTransportPolicy: 'relay' })
        .iceTransportPolicy,
    ).toBe('relay');
    expect(problems({ apiUrls: ['https://a.example.com'], iceTransportPolicy: 'turn' })).toEqual([
      expect.stringMatching(/^iceTransportPolicy: .*"all".*"relay"/),
    ]);
  });

  it('requires at least one API URL', () => {
    expect(problems({ apiUrls: [] })).toEqual([
      expect.stringMatching(/^apiUrls: must list at least one API base URL/),
    ]);
    expect(problems({})).toEqual([expect.stringMatching(/^apiUrls: /)]);
  });

  it('re-parses its own output unchanged (the generator writes parsed configs)', () => {
    const cfg = parseClientConfig({
      apiUrls: ['http://api.mr.test:8080'],
      regionUrls: { 'us-east-1': 'http://127.0.1.1:8080' },
      dns: { server: '127.0.0.1:5353' },
    });
    expect(parseClientConfig(JSON.parse(JSON.stringify(cfg)))).toEqual(cfg);
  });
});
