#!/usr/bin/env bash
# Checks what the local system needs from the machine: Python 3.11+, uv, a JDK 17+ with Maven
# (Kafka), PostgreSQL 15 server binaries. As root on Debian/Ubuntu it installs what is missing;
# otherwise it says what to install.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
missing_apt=()

command -v python3 >/dev/null || die "python3 (3.11 or later) is needed"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or later is needed"
command -v java >/dev/null || missing_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing_apt+=(maven)
[[ -x $PG_BIN/postgres ]] || missing_apt+=(postgresql-15)
# documents: the antivirus daemon, and libdmtx for the tests that decode the card's Data Matrix.
command -v clamd >/dev/null || [[ -x /usr/sbin/clamd ]] || missing_apt+=(clamav-daemon)
dpkg -s libdmtx0b >/dev/null 2>&1 || missing_apt+=(libdmtx0b)
# The browser tests of web/ drive Debian's Chromium (Playwright cannot download a browser here);
# npm fetches axe-core, the accessibility engine they inject.
[[ -x /usr/bin/chromium ]] || missing_apt+=(chromium)
command -v npm >/dev/null || missing_apt+=(npm)

if ((${#missing_apt[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing ${missing_apt[*]}"
    # Wait for another apt run (a parallel setup) rather than fail on its lock.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing_apt[@]}" >/dev/null
  else
    die "please install: ${missing_apt[*]} (Debian/Ubuntu package names)"
  fi
fi

if ! command -v uv >/dev/null && ! python3 -m uv --version >/dev/null 2>&1; then
  say "installing uv from PyPI"
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
fi

# axe-core for the browser tests: one pinned file from the npm registry, kept outside the clone
# (tests/integration/web_browser.py reads it from there).
AXE_VERSION=4.10.3
axe_dir="${ESPACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/espace}/axe"
if [[ ! -s $axe_dir/axe-core-$AXE_VERSION.min.js ]]; then
  say "fetching axe-core $AXE_VERSION (npm)"
  mkdir -p "$axe_dir"
  (cd "$axe_dir" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null &&
    tar -xzf "axe-core-$AXE_VERSION.tgz" package/axe.min.js &&
    mv package/axe.min.js "axe-core-$AXE_VERSION.min.js" && rmdir package && rm -f "axe-core-$AXE_VERSION.tgz")
fi
