#!/usr/bin/env bash
# Installs what the integration and system tests need on a fresh machine: MariaDB server, client and
# mariabackup from Debian's packages (and sysbench, the HAProxy system test's load; promtool; chromium for
# the topology page's browser test), then the real
# Consul (v1.16.3) and versitygw built from their Go modules. Each step is skipped when already done.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
need=()
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
command -v mariabackup >/dev/null 2>&1 || need+=(mariadb-backup)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap) # the container base image
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)        # partitions: enter a container's netns
command -v iptables >/dev/null 2>&1 || need+=(iptables)         # partitions: drop packets inside it
command -v sysbench >/dev/null 2>&1 || need+=(sysbench)         # load through HAProxy (TestHAProxyFrontDoor)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)       # promtool check metrics (TestPromtoolCheckMetrics)
command -v chromium >/dev/null 2>&1 || need+=(chromium)         # the topology page in a real browser (TestTopologyPage)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need ${need[*]}: run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "install-deps: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian's package starts a system mariadb; the tests run their own servers.
  (service mariadb stop || true) >/dev/null 2>&1
  (service prometheus stop || true) >/dev/null 2>&1 # only its promtool is wanted
fi
"$here/install-consul.sh"
"$here/install-versitygw.sh"
