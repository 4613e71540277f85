#!/usr/bin/env bash
# Install what bordergate needs from Debian 12's packages (as root).
#   scripts/deps.sh          build + run dependencies
#   scripts/deps.sh --test   also what the test suite and benchmarks use
# Does nothing (and needs no network) when everything is already installed.
set -euo pipefail

PKGS=(build-essential cmake pkg-config libevent-dev libssl-dev libjansson-dev
      libmaxminddb-dev zlib1g-dev libcmocka-dev openssl ca-certificates
      tor-geoipdb libmaxmind-db-writer-perl mmdb-bin curl python3
      libhiredis-dev)
if [ "${1:-}" = "--test" ]; then
    PKGS+=(python3-requests clang libclang-rt-14-dev valgrind wrk nginx-light
           systemd procps iproute2 chromium cppcheck clang-format clang-tidy python3-yaml mandoc groff-base man-db
           redis-server prometheus)
    # Node.js and npm may come from elsewhere (a nodesource build bundles npm,
    # and Debian's npm package then cannot be installed beside it): only ask
    # apt for them when the commands are missing.
    command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
    command -v npm >/dev/null 2>&1 || PKGS+=(npm)
fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing packages: ${missing[*]}" >&2
        echo "deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # nginx-light's package starts a system nginx on port 80; the benchmarks run
    # their own instance, so leave the system one stopped.
    if printf '%s\n' "${missing[@]}" | grep -qx nginx-light; then
        (systemctl stop nginx 2>/dev/null || service nginx stop 2>/dev/null || pkill -x nginx || true) >/dev/null 2>&1
    fi
    # Likewise redis-server and prometheus start system services; the fleet
    # tests run their own redis-server on a loopback port, promtool is a CLI.
    for svc in redis-server prometheus prometheus-node-exporter; do
        if printf '%s\n' "${missing[@]}" | grep -qx "${svc%%-node-exporter}"; then
            (systemctl stop "$svc" 2>/dev/null || service "$svc" stop 2>/dev/null || true) >/dev/null 2>&1
        fi
    done
fi

# Browser tests drive Debian's chromium with playwright-core from the npm
# registry (pinned in tests/browser/package-lock.json; no browser download).
BROWSER_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if [ "${1:-}" = "--test" ] && [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
    (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
