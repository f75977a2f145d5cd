import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { TABLE_DATA_ACTIONS } from '../../lib/table-access';

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
