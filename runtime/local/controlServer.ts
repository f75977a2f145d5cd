/**
 * The local stack's dashboard and control API on 127.0.0.1 (never on a region address: it is the
 * operator's view from outside every region, so it must survive any region's failure).
 *
 *   GET  /                               dashboard page (no build step)
 *   GET  /api/state                      regions, processes, DNS health and answers, servers, rooms, replication
 *   POST /api/regions/:region/kill       SIGKILL the region's processes and partition its replica
 *   POST /api/regions/:region/blackhole  SIGSTOP them (sockets stay open, nothing answers) and partition
 *   POST /api/regions/:region/restore    undo either: resume or restart the processes, heal the partition
 *   POST /api/processes/:name/(kill|restore)  one process (a single media server, for rejoin tests)
 *   POST /api/dns/zones/:zone/(fail|restore)  one DNS zone (primary|backup) drops every query, or answers again
 *
 * It answers only its own pages. A web page the developer visits must not be able to drive it:
 *   - the Host must be this server's own loopback address (a DNS-rebinding name is refused);
 *   - a request carrying an Origin must come from this server's origin;
 *   - a state-changing request must be JSON: a cross-site form or `no-cors` fetch can only send
 *     text/plain, urlencoded or multipart bodies, and a JSON one needs a CORS preflight we never grant.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Store } from '../store';
import type { DnsEmulator } from './dnsEmulator';
import type { DynamoEmulator } from './dynamoEmulator';
import type { ProcessSupervisor } from './ProcessSupervisor';
import type { LocalStackState } from './stateFile';

export interface ControlServer {
  readonly url: string;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

export interface ControlServerOptions {
  readonly host: string;
  readonly port: number;
  readonly state: () => LocalStackState;
  readonly supervisor: ProcessSupervisor;
  readonly dynamo: DynamoEmulator;
  readonly dns: DnsEmulator;
  readonly storeFor: (region: string) => Store;
  /** Extra static pages (the browser demo) mounted by the caller. */
  readonly register?: (app: FastifyInstance) => Promise<void>;
}

/** Client locations the dashboard shows DNS answers for: one per region, 127.0.<n>.100. */
function clientLocations(state: LocalStackState): { location: string; source: string }[] {
  return state.regions.map((r) => ({
    location: `near ${r.name}`,
    source: r.address.replace(/\.\d+$/, '.100'),
  }));
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const app = Fastify({ logger: false });
  guardOwnPages(app, opts.host, opts.port);
  const dashboard = fs.readFileSync(path.join(__dirname, 'dashboard.html'), 'utf8');

  const regionParam = {
    type: 'object',
    properties: { region: { type: 'string', maxLength: 32 } },
    required: ['region'],
    additionalProperties: false,
  } as const;

  const knownRegion = (region: string): boolean => opts.state().regions.some((r) => r.name === region);

  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    void reply
      .status(status)
      .send({ error: { code: status < 500 ? 'bad_request' : 'internal', message: err.message } });
  });

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(dashboard));

  app.get('/api/state', async () => {
    const state = opts.state();
    const dnsStatus = opts.dns.status();
    const replicationStats = opts.dynamo.stats();
    const replication = Object.entries(replicationStats.regions).map(([region, r]) => ({
      region,
      paused: r.paused,
      queueDepth: r.inboundQueue + r.outboundQueue,
      lagP50Ms: r.lagP50Ms,
      lagMaxMs: r.lagMaxMs,
      applied: r.applied,
      endpointState: r.endpointState,
    }));
    const regions = await Promise.all(
      state.regions.map(async (r) => {
        const store = opts.storeFor(r.name);
        const [servers, rooms, status] = await Promise.all([
          store.servers.list(r.name).catch(() => []),
          store.rooms.list(r.name).catch(() => []),
          store.regions.getStatus(r.name).catch(() => null),
        ]);
        const health = dnsStatus.regions.find((h) => h.region === r.name);
        return {
          name: r.name,
          address: r.address,
          lbUrl: r.lbUrl,
          turn: r.turn,
          dnsHealthy: health?.healthy ?? false,
          lastProbe:
            health?.lastProbeOk === undefined
              ? null
              : health.lastProbeOk
                ? 'ok'
                : (health.lastError ?? 'failed'),
          status: status?.status ?? 'unknown (replica unreachable)',
          processes: state.processes.filter((p) => p.region === r.name),
          servers: servers.map((s) => ({ ...s, alive: store.servers.isAlive(s) })),
          rooms,
        };
      }),
    );
    const regionOf = (a: string) => state.regions.find((r) => r.address === a)?.name ?? '?';
    const dnsAnswers = clientLocations(state).map((loc) => {
      const answers = opts.dns.resolveFor(loc.source, `api.${state.domain}`);
      const backupAnswers = opts.dns.resolveFor(loc.source, `api-backup.${state.backupDomain}`);
      return {
        ...loc,
        answers,
        regions: answers.map(regionOf),
        backupAnswers,
        backupRegions: backupAnswers.map(regionOf),
      };
    });
    return {
      tableName: state.tableName,
      domain: state.domain,
      backupDomain: state.backupDomain,
      dns: state.dns,
      dnsZones: dnsStatus.zones,
      healthCheck: state.healthCheck,
      dnsTtlSeconds: state.dnsTtlSeconds,
      regions: regions.map(({ rooms: _rooms, ...r }) => r),
      rooms: regions.flatMap((r) => r.rooms).sort((a, b) => a.id.localeCompare(b.id)),
      replication,
      dnsAnswers,
      dnsHealth: dnsStatus,
    };
  });

  app.post<{ Params: { region: string; action: string } }>(
    '/api/regions/:region/:action',
    {
      schema: {
        params: {
          type: 'object',
          properties: {
            region: regionParam.properties.region,
            action: { type: 'string', enum: ['kill', 'blackhole', 'restore'] },
          },
          required: ['region', 'action'],
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const { region, action } = req.params;
      if (!knownRegion(region)) {
        return reply.status(404).send({
          error: { code: 'unknown_region', message: `region "${region}" is not part of this stack` },
        });
      }
      const names = opts.supervisor.select({ region });
      // The fault's moment, reported so a chaos run times from it and not from its own request's arrival.
      const at = Date.now();
      // A dead region's database is gone with it: partition the replica and take its endpoint down
      // (refusing for a kill, silent for a blackhole) so nothing in the region can limp on. The
      // partition and the signals are synchronous and go first, so the whole region fails at one
      // moment (the chaos clock starts before this request); closing the endpoint's sockets follows.
      if (action === 'kill') {
        opts.dynamo.pause(region);
        names.forEach((n) => opts.supervisor.kill(n));
        await opts.dynamo.stopEndpoint(region, 'refuse');
      } else if (action === 'blackhole') {
        opts.dynamo.pause(region);
        names.forEach((n) => opts.supervisor.freeze(n));
        await opts.dynamo.stopEndpoint(region, 'blackhole');
      } else {
        await opts.dynamo.startEndpoint(region);
        opts.dynamo.resume(region);
        names.forEach((n) => opts.supervisor.release(n));
      }
      return {
        region,
        action,
        at,
        processes: opts.supervisor.status().filter((p) => p.region === region),
      };
    },
  );

  app.post<{ Params: { name: string; action: string } }>(
    '/api/processes/:name/:action',
    {
      schema: {
        params: {
          type: 'object',
          properties: {
            name: { type: 'string', maxLength: 64 },
            action: { type: 'string', enum: ['kill', 'freeze', 'restore'] },
          },
          required: ['name', 'action'],
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const { name } = req.params;
      if (opts.supervisor.select({ name }).length === 0) {
        return reply
          .status(404)
          .send({ error: { code: 'unknown_process', message: `no process named "${name}"` } });
      }
      if (req.params.action === 'kill') opts.supervisor.kill(name);
      else if (req.params.action === 'freeze') opts.supervisor.freeze(name);
      else opts.supervisor.release(name);
      return { name, action: req.params.action, at: Date.now() };
    },
  );

  app.post<{ Params: { zone: 'primary' | 'backup'; action: 'fail' | 'restore' } }>(
    '/api/dns/zones/:zone/:action',
    {
      schema: {
        params: {
          type: 'object',
          properties: {
            zone: { type: 'string', enum: ['primary', 'backup'] },
            action: { type: 'string', enum: ['fail', 'restore'] },
          },
          required: ['zone', 'action'],
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const { zone, action } = req.params;
      opts.dns.setZoneFailed(zone, action === 'fail');
      return { zone, action, at: Date.now(), zones: opts.dns.status().zones };
    },
  );

  if (opts.register) await opts.register(app);

  await app.listen({ host: opts.host, port: opts.port });
  return { url: `http://${opts.host}:${opts.port}`, app, close: () => app.close() };
}

/** Host, Origin and content-type checks that keep other web pages (and rebinding names) out. */
function guardOwnPages(app: FastifyInstance, host: string, port: number): void {
  const hosts = new Set([host, '127.0.0.1', 'localhost', '[::1]'].map((h) => `${h}:${port}`));
  const origins = new Set([...hosts].map((h) => `http://${h}`));
  app.addHook('onRequest', async (req, reply) => {
    const refuse = (status: number, code: string, message: string) =>
      reply.code(status).send({ error: { code, message } });
    const requestHost = req.headers.host?.toLowerCase();
    if (!requestHost || !hosts.has(requestHost)) {
      return refuse(421, 'wrong_host', `this control server answers only to ${[...hosts].join(', ')}`);
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.has(origin)) {
      return refuse(403, 'foreign_origin', `requests from ${origin.slice(0, 100)} are not accepted`);
    }
    const type = req.headers['content-type'] ?? '';
    if (req.method !== 'GET' && req.method !== 'HEAD' && !/^application\/json\b/i.test(type)) {
      return refuse(
        415,
        'json_required',
        'state-changing requests must send a JSON body (Content-Type: application/json)',
      );
    }
  });
}
