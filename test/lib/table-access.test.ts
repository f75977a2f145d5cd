import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ITEM_KEY_PREFIXES, type ItemKind, TABLE_DATA_ACTIONS } from '../../lib/table-access';

/** The document client's command names and the DynamoDB actions they call. */
const DOCUMENT_COMMAND_ACTIONS: Record<string, string> = {
  Get: 'dynamodb:GetItem',
  BatchGet: 'dynamodb:BatchGetItem',
  Put: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  Query: 'dynamodb:Query',
};

describe('table access grants', () => {
  it('allow every call the store makes, and nothing it does not make', () => {
    const source = readFileSync(path.join(__dirname, '../../runtime/store/store.ts'), 'utf8');
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

/** The store's write methods and the item kind each writes (runtime/store/store.ts). */
const STORE_WRITES: Record<string, ItemKind> = {
  putServer: 'server',
  registerServer: 'server',
  heartbeat: 'server',
  drainServer: 'server',
  setServerStatus: 'server',
  removeServer: 'server',
  placeRoom: 'room',
  releaseRoom: 'room',
  setRegionStatus: 'region',
  putRegionSummary: 'region',
};

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
    const source = readFileSync(path.join(__dirname, '../../runtime/store/store.ts'), 'utf8');
    for (const prefix of Object.values(ITEM_KEY_PREFIXES)) expect(source).toContain(`pk: \`${prefix}\${`);
  });

  it("cover every kind each service's code writes, and the grants in the stacks say so", () => {
    for (const [service, granted] of Object.entries(GRANTED)) {
      const code = filesUnder(path.join(__dirname, '../../runtime', service))
        .map((f) => readFileSync(f, 'utf8'))
        .join('\n');
      const writes = new Set(
        [...code.matchAll(/store\.(\w+)\(/g)]
          .map((m) => STORE_WRITES[m[1]!])
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
