#!/usr/bin/env bash
# Install the Debian packages a target needs, skipping what is already present.
# Usage: scripts/system-packages.sh run|test
set -euo pipefail
want=()
need() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ] || want+=("$3"); }
case "${1:-run}" in
  run)
    need espeak-ng /usr/bin/espeak-ng espeak-ng
    need node /usr/bin/node nodejs  # the console's browser libraries (npm ci, make vendor)
    need npm /usr/bin/npm npm
    ;;
  test)
    need espeak-ng /usr/bin/espeak-ng espeak-ng
    need redis-server /usr/bin/redis-server redis-server
    need initdb /usr/lib/postgresql/15/bin/initdb postgresql
    need node /usr/bin/node nodejs
    need npm /usr/bin/npm npm
    need chromium /usr/bin/chromium chromium
    need curl /usr/bin/curl curl
    need rsync /usr/bin/rsync rsync  # the baseline of the workspaces benchmark
    ;;
esac
if [ ${#want[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${want[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi
