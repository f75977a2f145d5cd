/**
 * The local stack's control server answers only its own pages. Before, a cross-site `text/plain` POST
 * from any web page the developer visited killed a process, and a DNS-rebinding name (a hostile domain
 * that resolves to 127.0.0.1) got a 12-hour join token for any room. The control server now refuses a
 * foreign Host (421), a foreign Origin (403) and a state-changing request that is not JSON (415), and
 * changes nothing when it refuses. A real supervisor with a real child shows what "nothing" means.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { startControlServer, type ControlServer } from '../../runtime/local/controlServer';
import { demoRoutes } from '../../runtime/local/demoServer';
import { ProcessSupervisor } from '../../runtime/local/ProcessSupervisor';
import type { LocalStackState } from '../../runtime/local/stack';

jest.setTimeout(30_000);

const HOST = '127.0.150.1';
const PORT = 23_300;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'control-'));
const entry = path.join(dir, 'child.ts');
fs.writeFileSync(
  entry,
  'setInterval(() => undefined, 1000);\nprocess.on("SIGTERM", () => process.exit(0));\n',
);

let supervisor: ProcessSupervisor;
let control: ControlServer;
const minted: string[] = [];

beforeAll(async () => {
  supervisor = new ProcessSupervisor(path.join(dir, 'logs'));
  supervisor.add({ name: 'victim', region: 'us-east-1', role: 'media', entry, env: {} });
  const state = () =>
    ({ regions: [{ name: 'us-east-1', lbUrl: 'http://127.0.1.1:8080' }] }) as unknown as LocalStackState;
  control = await startControlServer({
    host: HOST,
    port: PORT,
    state,
    supervisor,
    // Only /api/state and region actions touch the emulators; these tests stay clear of them.
    dynamo: undefined as never,
    dns: undefined as never,
    storeFor: () => {
      throw new Error('not used');
    },
    register: demoRoutes({
      state,
      devToken: async (room, sub) => {
        minted.push(`${room}/${sub}`);
        return 'dev-token';
      },
    }),
  });
});

afterAll(async () => {
  await control?.close();
  await supervisor?.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

const victim = () => supervisor.status().find((s) => s.name === 'victim')!;

/** A raw HTTP request (fetch may not set Host, which is what a rebinding page's browser sends). */
function send(
  method: string,
  urlPath: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port: PORT, method, path: urlPath, headers: { host: `${HOST}:${PORT}`, ...headers } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          let code: string | undefined;
          try {
            code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
          } catch {
            code = undefined;
          }
          resolve({ status: res.statusCode ?? 0, code });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('a cross-site text/plain POST (what any web page can send without a preflight) kills nothing', async () => {
  const res = await send(
    'POST',
    '/api/processes/victim/kill',
    { 'content-type': 'text/plain', origin: 'http://evil.example' },
    'x',
  );
  expect(res.status).toBe(403);
  // Same-origin header but still not JSON: refused too.
  expect(await send('POST', '/api/processes/victim/kill', { 'content-type': 'text/plain' }, 'x')).toEqual({
    status: 415,
    code: 'json_required',
  });
  expect(
    await send(
      'POST',
      '/api/processes/victim/kill',
      { 'content-type': 'application/x-www-form-urlencoded' },
      'a=b',
    ),
  ).toMatchObject({ status: 415 });
  expect(victim()).toMatchObject({ state: 'running', frozen: false });
});

test('a rebinding Host gets neither a token nor an action', async () => {
  const res = await send('GET', '/demo/token?room=any&sub=mallory', { host: `rebind.example:${PORT}` });
  expect(res).toEqual({ status: 421, code: 'wrong_host' });
  expect(minted).toEqual([]);
  expect(
    await send(
      'POST',
      '/api/processes/victim/kill',
      { host: 'rebind.example', 'content-type': 'application/json' },
      '{}',
    ),
  ).toMatchObject({ status: 421 });
  expect(victim()).toMatchObject({ state: 'running', frozen: false });
});

test('a foreign Origin gets no token either, even with the right Host', async () => {
  const res = await send('GET', '/demo/token?room=any&sub=mallory', { origin: 'http://evil.example' });
  expect(res).toEqual({ status: 403, code: 'foreign_origin' });
  expect(minted).toEqual([]);
});

test("its own page's requests work: a token, and a JSON POST that acts", async () => {
  const token = await send('GET', '/demo/token?room=demo&sub=alice', { origin: `http://${HOST}:${PORT}` });
  expect(token.status).toBe(200);
  expect(minted).toEqual(['demo/alice']);
  expect(
    await send(
      'POST',
      '/api/processes/victim/kill',
      { 'content-type': 'application/json', origin: `http://${HOST}:${PORT}` },
      '{}',
    ),
  ).toMatchObject({ status: 200 });
  expect(victim().state).not.toBe('running');
  // localhost names this server too.
  expect((await send('GET', '/demo/token?room=demo&sub=bob', { host: `localhost:${PORT}` })).status).toBe(
    200,
  );
});
