#!/usr/bin/env bash
# Installs and starts what `CI=true npm test` needs beyond Node.js, on Debian/Ubuntu (root or sudo;
# idempotent): PostgreSQL (127.0.0.1:5432, trust auth, database `test`), Redis (127.0.0.1:6379),
# prometheus/promtool/amtool (scripts/ci-install-monitoring.sh) and chromium
# (scripts/ci-install-chromium.sh). See README.md, Requirements.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=''
if [ "$(id -u)" -ne 0 ]; then sudo='sudo'; fi
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  hba="/etc/postgresql/${version}/main/pg_hba.conf"
  # Loopback connections without a password, for the test database only (first line: first match wins).
  if ! $sudo grep -q 'portico-tests' "$hba"; then
    $sudo sed -i '1i host test all 127.0.0.1/32 trust # portico-tests' "$hba"
  fi
  echo "install-test-deps: starting PostgreSQL ${version}"
  $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
if command -v psql >/dev/null 2>&1; then
  as_postgres psql -qtc "select 1 from pg_database where datname = 'test'" 2>/dev/null | grep -q 1 ||
    as_postgres createdb test 2>/dev/null || true
fi

if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "install-test-deps: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi

bash scripts/ci-install-monitoring.sh
bash scripts/ci-install-chromium.sh
echo "install-test-deps: ready for CI=true npm test"
