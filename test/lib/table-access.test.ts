import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ITEM_KEY_PREFIXES, type ItemKind, TABLE_DATA_ACTIONS } from '../../lib/table-access';
import type { Store } from '../../runtime/store';

/** The document client's command names and the DynamoDB actions they call. */
const DOCUMENT_COMMAND_ACTIONS: Record<string, string> = {
  Get: 'dynamodb:GetItem',
  BatchGet: 'dynamodb:BatchGetItem',
  Put: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  Query: 'dynamodb:Query',
};

/** Every source file of the store: the table plumbing and its repositories. */
function storeSource(): string {
  return filesUnder(path.join(__dirname, '../../runtime/store'))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
}

describe('table access grants', () => {
  it('allow every call the store makes, and nothing it does not make', () => {
    const source = storeSource();
    const commands = new Set([...source.matchAll(/new (\w+)Command\(/g)].map((m) => m[1]!));
    expect(commands.size).toBeGreaterThan(0);
    const actions = [...commands].map((command) => {
      const action = DOCUMENT_COMMAND_ACTIONS[command];
      if (!action) throw new Error(`the store sends ${command}Command; map it to its DynamoDB action here`);
      return action;
    });
    expect(new Set(actions)).toEqual(new Set(TABLE_DATA_ACTIONS));
  });
});

type Repositories = Pick<Store, 'servers' | 'rooms' | 'regions'>;

/**
 * The store's repositories (`store.servers`, ...), the item kind each one writes, and its write methods
 * (runtime/store/*Repository.ts). Typed against the repositories, so a renamed method fails to compile.
 */
const STORE_WRITES: { [R in keyof Repositories]: { kind: ItemKind; methods: (keyof Repositories[R])[] } } = {
  servers: { kind: 'server', methods: ['put', 'register', 'heartbeat', 'drain', 'setStatus', 'remove'] },
  rooms: { kind: 'room', methods: ['place', 'release', 'refresh'] },
  regions: { kind: 'region', methods: ['setStatus', 'putSummary'] },
};

/** The item kind `store.<repository>.<method>(` writes, if that call is a write. */
function writtenKind(repository: string, method: string): ItemKind | undefined {
  const writes = (STORE_WRITES as Record<string, { kind: ItemKind; methods: string[] }>)[repository];
  return writes?.methods.includes(method) ? writes.kind : undefined;
}

/** What lib/lb-service.ts and lib/media-fleet.ts grant (their `writes`). */
const GRANTED: Record<'lb' | 'media', ItemKind[]> = { lb: ['room', 'region'], media: ['server', 'room'] };

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? filesUnder(path.join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [path.join(dir, e.name)]
        : [],
  );
}

describe('write grants by item kind', () => {
  it('use the partition key prefixes the store builds its keys with', () => {
    const source = storeSource();
    for (const prefix of Object.values(ITEM_KEY_PREFIXES)) expect(source).toContain(`pk: \`${prefix}\${`);
  });

  it("cover every kind each service's code writes, and the grants in the stacks say so", () => {
    for (const [service, granted] of Object.entries(GRANTED)) {
      const code = filesUnder(path.join(__dirname, '../../runtime', service))
        .map((f) => readFileSync(f, 'utf8'))
        .join('\n');
      const writes = new Set(
        [...code.matchAll(/store\.(\w+)\.(\w+)\(/g)]
          .map((m) => writtenKind(m[1]!, m[2]!))
          .filter((k): k is ItemKind => !!k),
      );
      expect(writes.size).toBeGreaterThan(0);
      for (const kind of writes)
        expect({ service, kind, granted: granted.includes(kind) }).toEqual({ service, kind, granted: true });
    }
    const lb = readFileSync(path.join(__dirname, '../../lib/lb-service.ts'), 'utf8');
    const media = readFileSync(path.join(__dirname, '../../lib/media-fleet.ts'), 'utf8');
    expect(lb).toContain(`{ writes: ['room', 'region'] }`);
    expect(media).toContain(`{ writes: ['server', 'room'] }`);
  });
});
