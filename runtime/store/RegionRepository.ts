/**
 * Region items: the operator's status (`region#<r>` / `meta`) and the LB's summary (`region#<r>` /
 * `summary`), both listed under one GSI partition so a single query shows every region.
 *
 * Policy: each item has exactly one kind of writer, because global tables resolve conflicts per item:
 * an LB's periodic summary must never overwrite an evacuation written through another region's
 * replica. Both are plain puts; the latest write wins.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { StoreError } from './errors';
import { TABLE_KEYS } from './schema';
import type { Item, Table } from './Table';
import type { RegionStatus, RegionStatusRecord, RegionSummary, RegionView } from './types';

const REGIONS_GSI_PK = 'regions';

const regionKey = (region: string, sk: 'meta' | 'summary') => ({ pk: `region#${region}`, sk });

export class RegionRepository {
  constructor(
    private readonly table: Table,
    private readonly now: () => number,
  ) {}

  /** A region with no status item has never been evacuated: it is active. */
  async getStatus(region: string): Promise<RegionStatusRecord> {
    const out = await this.table.run('regions.getStatus', () =>
      this.table.doc.send(
        new GetCommand({ TableName: this.table.name, Key: regionKey(region, 'meta'), ConsistentRead: true }),
      ),
    );
    return out.Item ? toRegionStatus(out.Item) : { region, status: 'active', reason: '', updatedAt: 0 };
  }

  /** Operator action (evacuate / restore). Written through any region's replica; replicates everywhere. */
  async setStatus(region: string, status: RegionStatus, reason: string): Promise<RegionStatusRecord> {
    const record: RegionStatusRecord = { region, status, reason, updatedAt: this.now() };
    await this.table.run('regions.setStatus', () =>
      this.table.doc.send(
        new PutCommand({
          TableName: this.table.name,
          Item: {
            ...regionKey(region, 'meta'),
            ...record,
            [TABLE_KEYS.gsiPartitionKey]: REGIONS_GSI_PK,
            [TABLE_KEYS.gsiSortKey]: `${region}#meta`,
          },
        }),
      ),
    );
    return record;
  }

  /** The LB's periodic self-report; it never touches the status item. */
  async putSummary(summary: RegionSummary): Promise<void> {
    await this.table.run('regions.putSummary', () =>
      this.table.doc.send(
        new PutCommand({
          TableName: this.table.name,
          Item: {
            ...regionKey(summary.region, 'summary'),
            ...summary,
            [TABLE_KEYS.gsiPartitionKey]: REGIONS_GSI_PK,
            [TABLE_KEYS.gsiSortKey]: `${summary.region}#summary`,
          },
        }),
      ),
    );
  }

  /** Every region any LB or operator has written about, with its status and latest summary. */
  async list(): Promise<RegionView[]> {
    const items = await this.table.queryAll('regions.list', {
      IndexName: TABLE_KEYS.gsiName,
      KeyConditionExpression: '#gpk = :gpk',
      ExpressionAttributeNames: { '#gpk': TABLE_KEYS.gsiPartitionKey },
      ExpressionAttributeValues: { ':gpk': REGIONS_GSI_PK },
    });
    const views = new Map<string, { status?: RegionStatusRecord; summary?: RegionSummary }>();
    for (const item of items) {
      const region = String(item.region);
      const view = views.get(region) ?? {};
      if (item.sk === 'meta') view.status = toRegionStatus(item);
      else view.summary = toRegionSummary(item);
      views.set(region, view);
    }
    return [...views.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([region, v]) => ({
        region,
        status: v.status?.status ?? 'active',
        reason: v.status?.reason ?? '',
        statusUpdatedAt: v.status?.updatedAt ?? null,
        summary: v.summary ?? null,
      }));
  }
}

function toRegionStatus(item: Item): RegionStatusRecord {
  if (item.status !== 'active' && item.status !== 'evacuated') {
    throw new StoreError(
      `region item ${String(item.pk)} has an unknown status ${JSON.stringify(item.status)}`,
    );
  }
  return {
    region: String(item.region),
    status: item.status,
    reason: String(item.reason ?? ''),
    updatedAt: Number(item.updatedAt),
  };
}

function toRegionSummary(item: Item): RegionSummary {
  return {
    region: String(item.region),
    apiUrl: String(item.apiUrl),
    ...(typeof item.backupApiUrl === 'string' ? { backupApiUrl: item.backupApiUrl } : {}),
    ...(typeof item.addressApiUrl === 'string' ? { addressApiUrl: item.addressApiUrl } : {}),
    liveServers: Number(item.liveServers),
    load: Number(item.load),
    capacity: Number(item.capacity),
    reportedAt: Number(item.reportedAt),
  };
}
