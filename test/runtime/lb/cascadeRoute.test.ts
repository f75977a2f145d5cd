/**
 * The LB's cascade route: another region's media server asks for this region's leg with a cascade
 * token as a WebSocket subprotocol; the LB checks it before the upgrade and relays the socket to the
 * named server's private endpoint (an echo server here).
 */
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { CASCADE_SUBPROTOCOL, cascadeSubprotocols } from '../../../runtime/protocol/subprotocol';
import { signCascadeToken, signMediaToken } from '../../../runtime/protocol/tokens';
import { startEchoServer, type EchoServer } from '../../support/echoServer';
import { MEDIA_KEYS, mediaServer, startLb, type LbHarness } from './lbHarness';

let h: LbHarness;
let echo: EchoServer;
let lbOrigin: string;

beforeAll(async () => {
  h = await startLb({ region: 'eu-west-1' });
  echo = await startEchoServer({ greeting: '{"type":"heartbeat"}' });
  await h.admin.servers.put(mediaServer('eu-leg', 'eu-west-1', { endpoint: echo.endpoint }));
  await h.admin.servers.put(mediaServer('us-leg', 'us-east-1'));
  await h.app.fleet.refresh();
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  lbOrigin = `ws://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await echo.close();
  await h.close();
});

const cascadeToken = (server: string, room = 'r1') =>
  signCascadeToken(MEDIA_KEYS, { fromServer: 'ap-leg', fromRegion: 'ap-southeast-1', room, server });

/** The HTTP answer to an upgrade the LB refuses. */
function refusal(
  url: string,
  protocols: string[],
): Promise<{ status: number; body: { error: { code: string } } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
    });
  });
}

it("relays a cascade token's channel to the named server of this region, token in the private hop only", async () => {
  const token = await cascadeToken('eu-leg');
  const upstream = echo.nextConnection();
  const ws = new WebSocket(`${lbOrigin}/v1/rooms/r1/cascade`, cascadeSubprotocols(token));
  const first = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
  await new Promise((resolve) => ws.once('open', resolve));
  // The protocol is selected, never the token.
  expect(ws.protocol).toBe(CASCADE_SUBPROTOCOL);
  expect(await first).toBe('{"type":"heartbeat"}');
  expect((await upstream).url).toBe(`/v1/rooms/r1/cascade?token=${encodeURIComponent(token)}`);
  ws.close();
});

it('refuses before the upgrade: no token, a media token, another room, another region, an unknown server', async () => {
  const url = `${lbOrigin}/v1/rooms/r1/cascade`;
  const media = await signMediaToken(MEDIA_KEYS, {
    peerId: 'p',
    identity: 'i',
    room: 'r1',
    server: 'eu-leg',
  });
  const cases = await Promise.all([
    refusal(url, [CASCADE_SUBPROTOCOL]),
    refusal(url, cascadeSubprotocols(media.token)),
    refusal(url, cascadeSubprotocols(await cascadeToken('eu-leg', 'r2'))),
    refusal(url, cascadeSubprotocols(await cascadeToken('us-leg'))),
    refusal(url, cascadeSubprotocols(await cascadeToken('ghost'))),
  ]);
  expect(cases.map((c) => [c.status, c.body.error.code])).toEqual([
    [401, 'token_missing'],
    [403, 'token_wrong_scope'],
    [403, 'token_wrong_scope'],
    [403, 'wrong_region'],
    [404, 'server_not_found'],
  ]);
});
