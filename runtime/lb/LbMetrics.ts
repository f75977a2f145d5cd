/**
 * The LB's Prometheus metrics, on a registry of their own so that several apps in one process (tests)
 * never collide on the global default registry.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  StoreError,
  TableNotFoundError,
  ThrottledError,
  StoreUnavailableError,
  StoreValidationError,
} from '../store';

export type JoinOutcome =
  | 'assigned'
  | 'placed'
  | 'takeover'
  | 'lost_race'
  | 'no_capacity'
  | 'conflict'
  | 'rejected'
  | 'rate_limited'
  | 'shed'
  | 'bad_request'
  | 'error';

export type DbErrorKind = 'table_not_found' | 'throttled' | 'unavailable' | 'validation' | 'other';

export interface LbMetricsOptions {
  /** @default a registry of its own */
  readonly registry?: Registry;
  /** Labels every series, so one dashboard shows every region's LBs apart. */
  readonly region: string;
}

export class LbMetrics {
  readonly registry: Registry;
  readonly joins: Counter<'outcome'>;
  readonly placementSeconds: Histogram;
  readonly relaysOpen: Gauge;
  readonly relaysClosed: Counter<'reason'>;
  readonly dbErrors: Counter<'kind'>;
  readonly takeovers: Counter<'evidence'>;
  readonly serverProbes: Counter<'verdict'>;

  constructor({ registry = new Registry(), region }: LbMetricsOptions) {
    this.registry = registry;
    registry.setDefaultLabels({ region });
    collectDefaultMetrics({ register: registry, prefix: 'lb_' });
    this.joins = new Counter({
      name: 'lb_joins_total',
      help: 'Join requests by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.placementSeconds = new Histogram({
      name: 'lb_placement_duration_seconds',
      help: 'Time from a verified join to its answer (room read, placement write, media token)',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.relaysOpen = new Gauge({
      name: 'lb_relays_open',
      help: 'Signaling relays currently open',
      registers: [registry],
    });
    this.relaysClosed = new Counter({
      name: 'lb_relays_closed_total',
      help: 'Signaling relays closed, by which side or limit ended them',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.takeovers = new Counter({
      name: 'lb_takeovers_total',
      help: 'Rooms this LB moved off their server, by the evidence that the server was gone',
      labelNames: ['evidence'],
      registers: [registry],
    });
    this.serverProbes = new Counter({
      name: 'lb_server_probes_total',
      help: 'Probes of a media server a client named as failed, by verdict',
      labelNames: ['verdict'],
      registers: [registry],
    });
    this.dbErrors = new Counter({
      name: 'lb_db_errors_total',
      help: 'DynamoDB errors seen by the LB, by kind',
      labelNames: ['kind'],
      registers: [registry],
    });
  }

  countDbError(err: StoreError): void {
    this.dbErrors.inc({ kind: dbErrorKind(err) });
  }
}

export function dbErrorKind(err: StoreError): DbErrorKind {
  if (err instanceof TableNotFoundError) return 'table_not_found';
  if (err instanceof ThrottledError) return 'throttled';
  if (err instanceof StoreUnavailableError) return 'unavailable';
  if (err instanceof StoreValidationError) return 'validation';
  return 'other';
}
