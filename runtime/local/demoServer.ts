/**
 * The browser demo's routes on the local stack's control server (127.0.0.1 only):
 *
 *   GET /demo/              the page (runtime/client/demo/index.html)
 *   GET /demo/app.js        runtime/client/demo/demo.ts and the SDK, bundled with esbuild at first request
 *   GET /demo/config.json   the client config for a browser: every region's LB by loopback URL, the
 *                           region the browser is "near" (`?near=<region>`, default the first) first
 *   GET /demo/token         `?room=<room>&sub=<identity>`: a join token signed with the stack's secret
 *
 * Browsers cannot resolve `api.mr.test` (it lives in the DNS emulator), so the demo's fallback chain is
 * the regions' own addresses in distance order, which is what latency routing would have answered.
 * The token endpoint is a development convenience of the local stack: in production the app's backend
 * mints join tokens for users it has authenticated.
 */
import type { FastifyInstance } from 'fastify';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { byDistanceFrom } from '../protocol/regions';
import type { ClientConfigInput } from '../client/config';
import { DEV_IDENTITY_PATTERN, ROOM_ID_PATTERN } from '../protocol/ids';
import type { LocalStackState } from './stateFile';

const DEMO_DIR = path.resolve(__dirname, '..', 'client', 'demo');
const DEMO_TOKEN_TTL_S = 12 * 3600;

export interface DemoRoutesOptions {
  readonly state: () => LocalStackState;
  readonly devToken: (room: string, sub: string, ttlSeconds: number) => Promise<string>;
}

/** A `register` hook for startControlServer. */
export function demoRoutes(opts: DemoRoutesOptions): (app: FastifyInstance) => Promise<void> {
  return async (app) => {
    let bundle: Promise<string> | undefined;
    const buildOnce = (): Promise<string> => {
      // A failed build is not cached: fixing demo.ts and reloading the page must work without a restart.
      bundle ??= bundleDemo().catch((err: unknown) => {
        bundle = undefined;
        throw err;
      });
      return bundle;
    };

    app.get('/demo', async (_req, reply) => reply.redirect('/demo/'));

    app.get('/demo/', async (_req, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(fs.readFileSync(path.join(DEMO_DIR, 'index.html'), 'utf8')),
    );

    app.get('/demo/app.js', async (_req, reply) =>
      reply
        .type('text/javascript; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(await buildOnce()),
    );

    app.get<{ Querystring: { near?: string } }>(
      '/demo/config.json',
      {
        schema: {
          querystring: {
            type: 'object',
            properties: { near: { type: 'string', maxLength: 32 } },
            additionalProperties: false,
          },
        },
      },
      async (req, reply) => {
        const state = opts.state();
        const near = req.query.near ?? state.regions[0]!.name;
        if (!state.regions.some((r) => r.name === near)) {
          return reply.status(400).send({
            error: {
              code: 'unknown_region',
              message: `near="${near}" is not a region of this stack (${state.regions.map((r) => r.name).join(', ')})`,
            },
          });
        }
        return reply.header('cache-control', 'no-store').send(browserClientConfig(state, near));
      },
    );

    app.get<{ Querystring: { room: string; sub: string } }>(
      '/demo/token',
      {
        schema: {
          querystring: {
            type: 'object',
            properties: {
              room: { type: 'string', pattern: ROOM_ID_PATTERN },
              sub: { type: 'string', pattern: DEV_IDENTITY_PATTERN },
            },
            required: ['room', 'sub'],
            additionalProperties: false,
          },
        },
      },
      async (req, reply) => {
        const { room, sub } = req.query;
        const token = await opts.devToken(room, sub, DEMO_TOKEN_TTL_S);
        return reply.header('cache-control', 'no-store').send({ token, room, sub });
      },
    );
  };
}

/** The client config a browser near `near` uses on this stack. */
export function browserClientConfig(state: LocalStackState, near: string): ClientConfigInput {
  const names = state.regions.map((r) => r.name);
  const ordered = [near, ...byDistanceFrom(near, names).filter((r) => r !== near)];
  const urlOf = (name: string) => state.regions.find((r) => r.name === name)!.lbUrl;
  return {
    apiUrls: ordered.map(urlOf),
    regionUrls: Object.fromEntries(state.regions.map((r) => [r.name, r.lbUrl])),
  };
}

async function bundleDemo(): Promise<string> {
  // esbuild is a dev dependency, and so is the local stack: load it only when the page is asked for.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [path.join(DEMO_DIR, 'demo.ts')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}
