/**
 * The SDK entry must bundle for browsers without Node built-ins: Node-only code (DNS servers, source
 * addresses, `ws`) lives behind runtime/client/node.ts.
 */
import * as path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(__dirname, '../../..');

describe('browser bundle', () => {
  it('bundles runtime/client/index.ts for the browser without node: modules', async () => {
    const result = await build({
      entryPoints: [path.join(root, 'runtime/client/index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    const inputs = Object.keys(result.metafile.inputs);
    expect(
      inputs.filter((i) => /^(node:|runtime\/client\/(node|nodePlatform|dnsResolver)\.ts)/.test(i)),
    ).toEqual([]);
    expect(inputs.some((i) => i.includes('node_modules/ws/'))).toBe(false);
    expect(inputs).toContain('runtime/client/Session.ts');
    expect(result.outputFiles[0]!.text).not.toMatch(/require\(["']node:/);
  }, 60_000);

  it('the Node entry, by contrast, is for Node', async () => {
    const failure = await build({
      entryPoints: [path.join(root, 'runtime/client/node.ts')],
      bundle: true,
      platform: 'browser',
      write: false,
      logLevel: 'silent',
    }).catch((err: { errors: Array<{ text: string }> }) => err);
    expect('errors' in failure && failure.errors.length).toBeGreaterThan(0);
  }, 60_000);
});
