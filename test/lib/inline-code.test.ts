import { createRequire } from 'node:module';
import * as vm from 'node:vm';
import { inlineFunctionSource } from '../../lib/inline-code';

const nodeRequire = createRequire(__filename);

/** Loads transpiled inline code the way the Lambda runtime does: one CommonJS file, `exports.handler`. */
function load(source: string, modules: Record<string, unknown>) {
  const module = { exports: {} as Record<string, unknown> };
  vm.runInNewContext(source, {
    module,
    exports: module.exports,
    require: (name: string) => {
      if (name in modules) return modules[name];
      if (name.startsWith('node:')) return nodeRequire(name);
      throw new Error(`inline code required ${name}, which its runtime does not provide`);
    },
    process,
    console,
    Buffer,
  });
  return module.exports;
}

describe('inline function code', () => {
  it('transpiles each function module to one CommonJS file that exports a handler', () => {
    const termination = load(inlineFunctionSource('termination-policy'), {
      '@aws-sdk/client-dynamodb': { DynamoDBClient: class {}, BatchGetItemCommand: class {} },
    });
    expect(typeof termination.handler).toBe('function');
    const canary = load(inlineFunctionSource('join-canary'), {});
    expect(typeof canary.handler).toBe('function');
  });

  it('keeps comments out and stays far below the inline code limits', () => {
    for (const name of ['termination-policy', 'join-canary']) {
      const source = inlineFunctionSource(name);
      expect(source).not.toMatch(/^\s*\/\*\*/m);
      expect(Buffer.byteLength(source)).toBeLessThan(16 * 1024);
    }
  });
});
