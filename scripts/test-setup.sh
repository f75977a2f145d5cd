#!/usr/bin/env bash
# What `npm test` needs from Debian besides node_modules, checked before jest starts: Chromium (the
# browser demo test drives Debian's build; Playwright's own browser download cannot work offline), dig
# (dnsutils), coturn's turnserver, turnutils_uclient and turnutils_peer (the local TURN relays), openssl
# (the local relay's self-signed TLS certificate) and ss (iproute2: the relay tests list its sockets).
#
# Tools that are present cost one `command -v` each and no apt call. Missing ones are installed with
# apt-get when that needs no password (root, or passwordless sudo); otherwise the run stops here, in
# milliseconds, with the one command that installs them, instead of a browser or TURN test failing
# minutes into the suite.
set -euo pipefail

# tool:Debian package
REQUIRED=(chromium:chromium dig:dnsutils turnserver:coturn turnutils_uclient:coturn turnutils_peer:coturn openssl:openssl ss:iproute2)

# The browser test launches $CHROMIUM_PATH when set (test/e2e/browser-demo.test.ts); no package fixes a
# wrong one.
if [ -n "${CHROMIUM_PATH:-}" ] && [ ! -x "$CHROMIUM_PATH" ]; then
  echo "test setup: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable; point it at Chromium or unset it" >&2
  exit 1
fi

have() {
  if [ "$1" = chromium ] && [ -n "${CHROMIUM_PATH:-}" ]; then return 0; fi
  command -v "$1" >/dev/null 2>&1
}

missing_tools=()
packages=()
for entry in "${REQUIRED[@]}"; do
  tool=${entry%%:*}
  package=${entry#*:}
  have "$tool" && continue
  missing_tools+=("$tool")
  [[ " ${packages[*]} " == *" $package "* ]] || packages+=("$package")
done

if [ ${#packages[@]} -eq 0 ]; then
  echo "test setup: ${REQUIRED[*]%%:*} found"
  exit 0
fi

what="missing ${missing_tools[*]} (Debian packages: ${packages[*]})"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "test setup: $what, and this machine has no apt-get." >&2
  echo "Install what provides ${missing_tools[*]} with its package manager, then run npm test again." >&2
  exit 1
fi

# `id -u` rather than $EUID, so a test can play a user without root (test/scripts/test-setup.test.ts).
if [ "$(id -u)" = 0 ]; then
  as_root=()
  command_to_run="apt-get update && apt-get install -y ${packages[*]}"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
  command_to_run="sudo apt-get update && sudo apt-get install -y ${packages[*]}"
else
  echo "test setup: $what; installing them needs root, and sudo here asks for a password." >&2
  echo "Run this once, then npm test again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${packages[*]}" >&2
  exit 1
fi

echo "test setup: $what; installing them with apt-get (a minute or two, once)"
trap 'echo "test setup: apt-get failed; install by hand with: $command_to_run" >&2' ERR
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
trap - ERR

# Debian starts coturn as a system service on install, listening on port 3478 of every address; the
# tests start their own turnserver per region address, which that service would block.
if [[ " ${packages[*]} " == *" coturn "* ]] && [ -d /run/systemd/system ]; then
  if "${as_root[@]}" systemctl disable --now coturn.service >/dev/null 2>&1; then
    echo "test setup: stopped and disabled Debian's coturn service (the tests run their own turnserver)"
  else
    echo "test setup: could not stop Debian's coturn service; if port 3478 is taken, run: systemctl disable --now coturn" >&2
  fi
fi

for tool in "${missing_tools[@]}"; do
  if ! have "$tool"; then
    echo "test setup: apt-get installed ${packages[*]}, but $tool is still not found on PATH ($PATH)" >&2
    exit 1
  fi
done
echo "test setup: installed ${packages[*]}"
