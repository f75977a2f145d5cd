import { readLbEnv } from '../../../runtime/lb/env';
import { lbEnvironment } from '../../../runtime/protocol/lbEnvironment';

const valid = {
  REGION: 'eu-west-1',
  TABLE_NAME: 'mrwebrtc-rooms',
  JOIN_TOKEN_KEYS: JSON.stringify({ kid: 'j1', secret: 's'.repeat(32) }),
  MEDIA_TOKEN_KEYS: JSON.stringify({
    kid: 'm2',
    secret: 'm'.repeat(32),
    verify: [{ kid: 'm1', secret: 'o'.repeat(32) }],
  }),
  PUBLIC_API_URL: 'https://eu-west-1.api.example.com/',
};

describe('LB environment', () => {
  it('applies the documented defaults', () => {
    const env = readLbEnv(valid);
    expect(env).toMatchObject({ host: '0.0.0.0', port: 8080, logLevel: 'info', dynamoEndpoint: undefined });
    expect(env.config).toMatchObject({
      region: 'eu-west-1',
      publicApiUrl: 'https://eu-west-1.api.example.com',
      corsOrigins: [],
      trustProxyHops: 0,
    });
    expect(env.config.joinTokenKeys.current.kid).toBe('j1');
    expect(env.config.mediaTokenKeys.current.kid).toBe('m2');
    expect([...env.config.mediaTokenKeys.byKid.keys()]).toEqual(['m2', 'm1']);
  });

  it('reads the local-stack shape', () => {
    const env = readLbEnv({
      ...valid,
      DYNAMODB_ENDPOINT: 'http://127.0.2.1:8000',
      HOST: '127.0.2.1',
      PORT: '8080',
      PUBLIC_API_URL: 'http://127.0.2.1:8080',
      CORS_ORIGINS: 'http://127.0.0.1:3000, http://localhost:3000',
      TRUST_PROXY_HOPS: '1',
    });
    expect(env.config.corsOrigins).toEqual(['http://127.0.0.1:3000', 'http://localhost:3000']);
    expect(env.config.trustProxyHops).toBe(1);
    expect(env.dynamoEndpoint).toBe('http://127.0.2.1:8000');
  });

  it('reads both name families, and refuses half a backup family', () => {
    const env = readLbEnv({
      ...valid,
      BACKUP_API_URL: 'https://eu-west-1.api-backup.example.net/',
      BACKUP_DOMAIN: 'Example.NET',
    });
    expect(env.config).toMatchObject({
      backupApiUrl: 'https://eu-west-1.api-backup.example.net',
      backupDomain: 'example.net',
    });
    expect(readLbEnv(valid).config).not.toHaveProperty('backupApiUrl');
    expect(() => readLbEnv({ ...valid, BACKUP_API_URL: 'https://eu-west-1.api-backup.example.net' })).toThrow(
      /BACKUP_DOMAIN: BACKUP_API_URL and BACKUP_DOMAIN are set together/,
    );
    expect(() =>
      readLbEnv({ ...valid, BACKUP_API_URL: 'https://x.example.net', BACKUP_DOMAIN: 'not a domain' }),
    ).toThrow(/BACKUP_DOMAIN: must be a domain name/);
  });

  it('names every bad variable, and never echoes the secret', () => {
    const attempt = () =>
      readLbEnv({
        ...valid,
        REGION: 'mars-1',
        PORT: '99999',
        JOIN_TOKEN_KEYS: JSON.stringify({ kid: 'j1', secret: 'hunter2' }),
        MEDIA_TOKEN_KEYS: 'hunter2-not-json',
        PUBLIC_API_URL: 'ftp://x',
      });
    expect(attempt).toThrow(/REGION: must be an AWS region name such as "eu-west-1" \(got "mars-1"\)/);
    expect(attempt).toThrow(/PORT: .*\(got "99999"\)/);
    expect(attempt).toThrow(
      /JOIN_TOKEN_KEYS: secret is 7 bytes; use at least 32 random bytes \(set, not shown\)\n/,
    );
    expect(attempt).toThrow(/MEDIA_TOKEN_KEYS: is not JSON; expected \{"kid"/);
    expect(attempt).toThrow(/PUBLIC_API_URL: must be an http:\/\/ or https:\/\/ URL/);
    expect(attempt).not.toThrow(/hunter2/);
  });

  it('requires the variables without defaults', () => {
    expect(() => readLbEnv({})).toThrow(
      /REGION[\s\S]*TABLE_NAME[\s\S]*JOIN_TOKEN_KEYS[\s\S]*MEDIA_TOKEN_KEYS[\s\S]*PUBLIC_API_URL/,
    );
  });
});

describe('LB environment: TURN', () => {
  const TURN_SECRET = JSON.stringify({ kid: 't1', secret: 't'.repeat(40) });

  it('has no relay without TURN_SECRET', () => {
    expect(readLbEnv(valid).config.turn).toBeUndefined();
  });

  it('reads the secret and the relay settings, with the AWS defaults', () => {
    const aws = readLbEnv({ ...valid, TURN_SECRET, TURN_HOST_PREFIX: 'turn.' }).config.turn!;
    expect(aws).toMatchObject({ hostPrefix: 'turn.', port: 3478, tlsPort: 443, ttlSeconds: 8 * 3600 });
    expect(aws.secret.current.kid).toBe('t1');
    const local = readLbEnv({
      ...valid,
      TURN_SECRET,
      TURN_PORT: '3478',
      TURN_TLS_PORT: '5349',
      TURN_TTL_SECONDS: '600',
    }).config.turn!;
    expect(local).toMatchObject({ hostPrefix: '', tlsPort: 5349, ttlSeconds: 600 });
  });

  it('round-trips through the writer', () => {
    const written = lbEnvironment({
      region: 'eu-west-1',
      tableName: 'mrwebrtc-rooms',
      publicApiUrl: 'http://127.0.2.1:8080',
      joinTokenKeys: valid.JOIN_TOKEN_KEYS,
      mediaTokenKeys: valid.MEDIA_TOKEN_KEYS,
      turnSecret: TURN_SECRET,
      turn: { hostPrefix: '', port: 3478, tlsPort: 5349, ttlSeconds: 3600 },
    });
    expect(readLbEnv(written).config.turn).toMatchObject({ port: 3478, tlsPort: 5349, ttlSeconds: 3600 });
  });

  it('names bad TURN variables and never echoes the secret', () => {
    const attempt = () =>
      readLbEnv({
        ...valid,
        TURN_SECRET: JSON.stringify({ kid: 't1', secret: 'hunter2' }),
        TURN_HOST_PREFIX: 'turn',
        TURN_TTL_SECONDS: '60',
      });
    expect(attempt).toThrow(/TURN_SECRET: secret is 7 bytes.*\(set, not shown\)/);
    expect(attempt).toThrow(/TURN_HOST_PREFIX: must be empty or DNS labels ending in "."/);
    expect(attempt).toThrow(/TURN_TTL_SECONDS: .*\(got "60"\)/);
    expect(attempt).not.toThrow(/hunter2/);
  });
});
