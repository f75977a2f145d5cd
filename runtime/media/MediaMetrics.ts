/**
 * The media server's Prometheus metrics, on a registry of its own (several servers in one test process
 * must not collide on the default registry). Object counts are read at scrape time from the server.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { MediaServer } from './MediaServer';

export class MediaMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'outcome'>;
  readonly connections: Counter<'outcome'>;

  constructor(labels: { region: string; server: string }) {
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry, prefix: 'media_' });
    this.requests = new Counter({
      name: 'media_signaling_requests_total',
      help: 'Signaling requests by method and outcome (ok or the error code)',
      labelNames: ['method', 'outcome'],
      registers: [this.registry],
    });
    this.connections = new Counter({
      name: 'media_signaling_connections_total',
      help: 'Signaling connections by how they ended the join phase',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
  }

  /** Gauges computed from the live objects on every scrape. */
  observe(server: MediaServer, capacity: number): void {
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    gauge('media_rooms', 'Open rooms', () => server.stats().rooms);
    gauge('media_peers', 'Joined peers', () => server.stats().peers);
    gauge('media_transports', 'WebRTC transports', () => server.stats().transports);
    gauge('media_producers', 'Producers', () => server.stats().producers);
    gauge('media_consumers', 'Consumers', () => server.stats().consumers);
    gauge(
      'media_load_units',
      'Transports + consumers of producers that carried media (placement load, see load.ts)',
      () => server.loadUnits,
    );
    gauge('media_capacity_units', 'Configured capacity in load units', () => capacity);
    gauge('media_workers', 'Live mediasoup workers', () => server.pool.alive.length);
    gauge('media_worker_restarts', 'Workers re-created after dying', () => server.pool.restartCount);
    gauge('media_draining', '1 while the server drains', () => (server.status === 'draining' ? 1 : 0));
  }
}
