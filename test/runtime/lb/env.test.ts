import { readLbEnv } from '../../../runtime/lb/env';

const valid = {
  REGION: 'eu-west-1',
  TABLE_NAME: 'mrwebrtc-rooms',
  TOKEN_SECRET: 's'.repeat(32),
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

  it('names every bad variable, and never echoes the secret', () => {
    const attempt = () =>
      readLbEnv({
        ...valid,
        REGION: 'mars-1',
        PORT: '99999',
        TOKEN_SECRET: 'hunter2',
        PUBLIC_API_URL: 'ftp://x',
      });
    expect(attempt).toThrow(/REGION: must be an AWS region name such as "eu-west-1" \(got "mars-1"\)/);
    expect(attempt).toThrow(/PORT: .*\(got "99999"\)/);
    expect(attempt).toThrow(/TOKEN_SECRET: must be at least 32 bytes\n/);
    expect(attempt).toThrow(/PUBLIC_API_URL: must be an http:\/\/ or https:\/\/ URL/);
    expect(attempt).not.toThrow(/hunter2/);
  });

  it('requires the variables without defaults', () => {
    expect(() => readLbEnv({})).toThrow(/REGION[\s\S]*TABLE_NAME[\s\S]*TOKEN_SECRET[\s\S]*PUBLIC_API_URL/);
  });
});
