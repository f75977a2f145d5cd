/**
 * The LB's shared services as app decorators: the injected store, clock and config, the fleet cache,
 * placement, metrics, the region reporter and the registry of open relays. Background loops start when the
 * app is ready and stop when it closes; open relays are closed before the WebSocket server goes.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Store } from '../store';
import { StoreError } from '../store';
import type { Clock, LbConfig } from './config';
import { FleetCache } from './FleetCache';
import type { LbMetrics } from './LbMetrics';
import { LoadShedder } from './LoadShedder';
import { Placement } from './Placement';
import { RegionReporter } from './RegionReporter';
import { regionApiUrl } from './regionUrls';
import { RelayRegistry } from './RelayRegistry';
import { ServerProbe } from './ServerProbe';

declare module 'fastify' {
  interface FastifyInstance {
    lbConfig: LbConfig;
    store: Store;
    clock: Clock;
    fleet: FleetCache;
    placement: Placement;
    serverProbe: ServerProbe;
    metrics: LbMetrics;
    regionReporter: RegionReporter;
    relayRegistry: RelayRegistry;
    loadShedder: LoadShedder;
  }
}

export interface LbServicesOptions {
  readonly store: Store;
  readonly config: LbConfig;
  readonly clock: Clock;
  readonly metrics: LbMetrics;
}

export const lbServices = fp(
  async (app: FastifyInstance, opts: LbServicesOptions) => {
    const { store, config, clock, metrics } = opts;
    const backgroundError = (what: string) => (err: unknown) => {
      if (err instanceof StoreError) metrics.countDbError(err);
      app.log.warn({ err }, `${what} failed; retrying at the next tick`);
    };
    const fleet = new FleetCache({
      store,
      region: config.region,
      clock,
      maxAgeMs: config.fleetMaxAgeMs,
      onBackgroundError: backgroundError('fleet refresh'),
    });
    const own = {
      region: config.region,
      publicApiUrl: config.publicApiUrl,
      backupApiUrl: config.backupApiUrl,
      addressApiUrl: config.addressApiUrl,
      clock,
    };
    const reporter = new RegionReporter({
      store,
      fleet,
      ...own,
      onBackgroundError: backgroundError('region summary'),
    });

    app.decorate('lbConfig', config);
    app.decorate('store', store);
    app.decorate('clock', clock);
    app.decorate('metrics', metrics);
    app.decorate('fleet', fleet);
    const serverProbe = new ServerProbe({
      region: config.region,
      regionApiUrls: (region) => {
        const snap = fleet.current();
        if (!snap) return [];
        // By address first where there is one (the local stack, whose names this LB cannot resolve),
        // then by name in each family: a failed primary zone must not blind the probe.
        return (['address', 'primary', 'backup'] as const)
          .map((family) => regionApiUrl(snap, region, own, family))
          .filter((url): url is string => url !== null);
      },
    });
    app.decorate('serverProbe', serverProbe);
    app.decorate('placement', new Placement({ store, fleet, probe: serverProbe, metrics, ...own }));
    app.decorate('regionReporter', reporter);
    // Wall time, not the injected clock: tokens expire by wall time (their verifier's clock).
    app.decorate(
      'relayRegistry',
      new RelayRegistry({
        relaysPerAddress: config.limits.relaysPerAddress,
        relaysPerIdentity: config.limits.relaysPerIdentity,
        clock: Date.now,
      }),
    );

    const shedder = new LoadShedder({
      maxConcurrentJoins: config.limits.maxConcurrentJoins,
      maxEventLoopDelayMs: config.limits.maxEventLoopDelayMs,
      retryAfterSeconds: config.limits.shedRetryAfterSeconds,
    });
    app.decorate('loadShedder', shedder);

    app.addHook('onReady', async () => {
      shedder.start();
      fleet.start(config.fleetRefreshMs);
      reporter.start(config.summaryIntervalMs);
    });
    app.addHook('preClose', async () => {
      app.relayRegistry.closeAll('load balancer shutting down');
    });
    app.addHook('onClose', async () => {
      shedder.stop();
      fleet.stop();
      reporter.stop();
    });
  },
  { name: 'lb-services' },
);
