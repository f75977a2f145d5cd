/**
 * The DynamoDB single-table data layer shared by the LB service and the media servers: one Table on
 * this region's replica and a repository per item kind over it. A process constructs one Store and
 * closes it on shutdown.
 *
 * Every call goes to this region's replica only. Global tables check conditions against the local
 * replica and resolve cross-region conflicts last-writer-wins per item, so:
 *   - a placement can win here and lose globally; media servers re-read their rooms and converge;
 *   - each item has exactly one kind of writer where possible (the region status vs the LB summary).
 * No TransactWriteItems: it is region-local in global tables and the local emulator lacks it.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LegRepository } from './LegRepository';
import { RegionRepository } from './RegionRepository';
import { RoomRepository } from './RoomRepository';
import { ServerRepository, type ServerLivenessOptions } from './ServerRepository';
import { Table, type TableOptions } from './Table';

export interface StoreOptions extends TableOptions, ServerLivenessOptions {
  readonly now?: () => number;
}

export class Store {
  readonly servers: ServerRepository;
  readonly rooms: RoomRepository;
  /** Legs of rooms that span regions (cascading). */
  readonly legs: LegRepository;
  readonly regions: RegionRepository;
  /** The SDK client underneath (tests count and shape requests through its middleware stack). */
  readonly client: DynamoDBClient;
  private readonly table: Table;

  constructor(opts: StoreOptions) {
    const now = opts.now ?? Date.now;
    this.table = new Table(opts);
    this.client = this.table.client;
    this.servers = new ServerRepository(this.table, {
      region: opts.region,
      serverLivenessMs: opts.serverLivenessMs,
      remoteLivenessMarginMs: opts.remoteLivenessMarginMs,
      now,
    });
    this.rooms = new RoomRepository(this.table, now);
    this.legs = new LegRepository(this.table, now);
    this.regions = new RegionRepository(this.table, now);
  }

  close(): void {
    this.table.close();
  }
}
