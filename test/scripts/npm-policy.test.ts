/**
 * The install-script policy of issue #15 ("Supply chain"): the project's .npmrc makes npm refuse a
 * dependency's install script that package.json's `allowScripts` does not name, and takes dependencies
 * from the registry only. Read back through npm itself, so a misspelled key (which npm ignores) fails
 * here; and every package in the lockfile that has an install script is named, so `npm ci` under that
 * policy does not stop on a dependency nobody reviewed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

function npmConfig(key: string): string {
  const run = spawnSync('npm', ['config', 'get', key], { cwd: ROOT, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`npm config get ${key} failed: ${run.stderr}`);
  return run.stdout.trim();
}

test("npm reads the project's strict install-script and registry-only policy", () => {
  expect(npmConfig('strict-allow-scripts')).toBe('true');
  for (const key of ['allow-git', 'allow-remote', 'allow-file', 'allow-directory']) {
    expect([key, npmConfig(key)]).toEqual([key, 'none']);
  }
});

test('every locked package with an install script is reviewed in allowScripts', () => {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { hasInstallScript?: boolean }>;
  };
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    allowScripts: Record<string, boolean>;
  };
  const withScripts = Object.entries(lock.packages)
    // '' is the project itself: its own postinstall (the media worker) is not a dependency's.
    .filter(([where, entry]) => where !== '' && entry.hasInstallScript)
    .map(([where]) => where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length));
  expect(withScripts.length).toBeGreaterThan(0);
  expect(withScripts.filter((name) => !(name in pkg.allowScripts))).toEqual([]);
});
