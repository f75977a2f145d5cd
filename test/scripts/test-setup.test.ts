/**
 * `npm test` first runs scripts/test-setup.sh: present tools cost no apt call, missing ones are installed
 * when that needs no password, and otherwise the run stops at once with the command to run. Each case
 * runs the real script with PATH set to a folder of stand-ins (tools, `id`, `sudo`, `apt-get`), so
 * nothing is installed and the machine's own tools and privileges do not matter.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SCRIPT = path.resolve(__dirname, '../../scripts/test-setup.sh');
const ALL_TOOLS = ['chromium', 'dig', 'turnserver', 'turnutils_uclient', 'turnutils_peer', 'openssl', 'ss'];
/** Every tool the script wants, but these. */
const allBut = (...missing: string[]) => ALL_TOOLS.filter((t) => !missing.includes(t));
/** What each package puts on PATH, for the apt-get stand-in. */
const PROVIDES: Record<string, string[]> = {
  chromium: ['chromium'],
  dnsutils: ['dig'],
  coturn: ['turnserver', 'turnutils_uclient', 'turnutils_peer'],
  openssl: ['openssl'],
  iproute2: ['ss'],
};

let bin: string;
let aptLog: string;
beforeEach(() => {
  bin = fs.mkdtempSync(path.join(os.tmpdir(), 'test-setup-'));
  aptLog = path.join(bin, 'apt-get.log');
  // The script's one other external command.
  fs.symlinkSync(fs.realpathSync('/usr/bin/env'), path.join(bin, 'env'));
});
afterEach(() => fs.rmSync(bin, { recursive: true, force: true }));

function stub(name: string, body: string): void {
  fs.writeFileSync(path.join(bin, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
}

/** A machine with these tools, this user id, and sudo that lets in without a password or not at all. */
function machine(opts: { tools: string[]; uid: number; sudo?: 'passwordless' | 'asks'; apt?: boolean }) {
  for (const tool of opts.tools) stub(tool, 'exit 0');
  stub('id', `[ "$1" = -u ] && echo ${opts.uid}`);
  if (opts.sudo === 'passwordless')
    stub('sudo', `[ "$1" = -n ] && shift; [ "$1" = true ] || echo "sudo $*" >> ${aptLog}; "$@"`);
  if (opts.sudo === 'asks') stub('sudo', 'echo "sudo: a password is required" >&2; exit 1');
  if (opts.apt !== false) {
    const installs = Object.entries(PROVIDES)
      .map(
        ([pkg, tools]) =>
          `${pkg}) ${tools.map((t) => `printf '#!/bin/bash\\n' > ${bin}/${t}; /bin/chmod +x ${bin}/${t};`).join(' ')} ;;`,
      )
      .join('\n    ');
    stub(
      'apt-get',
      [
        `echo "apt-get $* (DEBIAN_FRONTEND=$DEBIAN_FRONTEND)" >> ${aptLog}`,
        '[ "$1" = install ] || exit 0',
        'for arg in "$@"; do',
        '  case "$arg" in',
        `    ${installs}`,
        '  esac',
        'done',
      ].join('\n'),
    );
  }
}

function runSetup(env: Record<string, string> = {}) {
  const started = Date.now();
  const result = spawnSync('/bin/bash', [SCRIPT], {
    env: { PATH: bin, ...env },
    encoding: 'utf8',
    timeout: 10_000,
  });
  return {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    ms: Date.now() - started,
    apt: fs.existsSync(aptLog) ? fs.readFileSync(aptLog, 'utf8').trim().split('\n') : [],
  };
}

it('passes with one line and no apt call when every tool is present, even as root', () => {
  machine({ tools: ALL_TOOLS, uid: 0 });
  const run = runSetup();
  expect(run.status).toBe(0);
  expect(run.stdout).toBe(`test setup: ${ALL_TOOLS.join(' ')} found\n`);
  expect(run.apt).toEqual([]);
});

describe('a tool missing, and no way to install without a password', () => {
  it('stops at once, naming the tool, the package and the command to run', () => {
    machine({ tools: allBut('chromium'), uid: 1000 });
    const run = runSetup();
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('missing chromium (Debian packages: chromium)');
    expect(run.stderr).toContain('  sudo apt-get update && sudo apt-get install -y chromium\n');
    expect(run.apt).toEqual([]);
    expect(run.ms).toBeLessThan(5_000);
  });

  it('stops when sudo asks for a password, listing each package once', () => {
    machine({
      tools: allBut('chromium', 'turnserver', 'turnutils_uclient', 'turnutils_peer'),
      uid: 1000,
      sudo: 'asks',
    });
    const run = runSetup();
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      'missing chromium turnserver turnutils_uclient turnutils_peer (Debian packages: chromium coturn)',
    );
    expect(run.stderr).toContain('sudo apt-get update && sudo apt-get install -y chromium coturn\n');
    expect(run.apt).toEqual([]);
  });

  it('says so on a machine without apt-get', () => {
    machine({ tools: allBut('dig'), uid: 0, apt: false });
    const run = runSetup();
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('missing dig (Debian packages: dnsutils), and this machine has no apt-get');
  });
});

describe('a tool missing, and root or passwordless sudo', () => {
  it('installs the missing packages with apt-get as root', () => {
    machine({ tools: allBut('chromium'), uid: 0 });
    const run = runSetup();
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('installing them with apt-get');
    expect(run.stdout).toContain('test setup: installed chromium\n');
    expect(run.apt).toEqual([
      'apt-get update -qq (DEBIAN_FRONTEND=)',
      'apt-get install -y -qq --no-install-recommends chromium (DEBIAN_FRONTEND=noninteractive)',
    ]);
  });

  it('installs through sudo -n when sudo needs no password', () => {
    machine({
      tools: allBut('turnserver', 'turnutils_uclient', 'turnutils_peer'),
      uid: 1000,
      sudo: 'passwordless',
    });
    const run = runSetup();
    expect(run.status).toBe(0);
    expect(run.apt).toEqual([
      'sudo apt-get update -qq',
      'apt-get update -qq (DEBIAN_FRONTEND=)',
      'sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends coturn',
      'apt-get install -y -qq --no-install-recommends coturn (DEBIAN_FRONTEND=noninteractive)',
    ]);
  });

  it('fails with the command when apt-get fails', () => {
    machine({ tools: allBut('chromium'), uid: 0 });
    stub('apt-get', 'echo "E: Could not get lock" >&2; exit 100');
    const run = runSetup();
    expect(run.status).toBe(100);
    expect(run.stderr).toContain(
      'apt-get failed; install by hand with: apt-get update && apt-get install -y chromium',
    );
  });
});

it('checks CHROMIUM_PATH instead of PATH when it is set', () => {
  machine({ tools: allBut('chromium'), uid: 1000 });
  const chromium = path.join(bin, 'elsewhere-chromium');
  fs.writeFileSync(chromium, '#!/bin/bash\n', { mode: 0o755 });
  expect(runSetup({ CHROMIUM_PATH: chromium }).status).toBe(0);
  const wrong = runSetup({ CHROMIUM_PATH: path.join(bin, 'nothing-here') });
  expect(wrong.status).toBe(1);
  expect(wrong.stderr).toContain('is not an executable; point it at Chromium or unset it');
});

it("is what README's test command runs before jest, and CI runs that command", () => {
  const root = path.resolve(__dirname, '../..');
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const command = /^(npm ci && npm test)\s+#/m.exec(readme)?.[1];
  expect(command).toBe('npm ci && npm test');
  expect(fs.readFileSync(path.join(root, '.ci/run'), 'utf8')).toMatch(/^\(npm ci && npm test\)$/m);
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  expect(pkg.scripts.test).toBe('bash scripts/test-setup.sh && jest');
});
