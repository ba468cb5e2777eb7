#!/usr/bin/env bash
# Installs prometheus, promtool and amtool (Debian packages prometheus and prometheus-alertmanager) when they
# are missing, for test/monitoring. Idempotent; needs root (CI runs as root) or sudo.
# The packages' services are not started (no systemd in CI containers).
set -euo pipefail

missing=()
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -eq 0 ]; then
  echo "ci-install-monitoring: prometheus, promtool and amtool present"
  exit 0
fi

sudo=''
if [ "$(id -u)" -ne 0 ]; then sudo='sudo'; fi
echo "ci-install-monitoring: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
promtool --version | head -1
amtool --version | head -1
