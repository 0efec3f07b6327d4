#!/usr/bin/env bash
# Entrypoint of mysqlpilot/haproxy (docker/haproxy.Dockerfile): derives etc/haproxy.cfg's
# settings from the environment, then becomes HAProxy's master (PID 1: it reaps and handles
# signals; docker stop's SIGTERM stops it).
#
#   CONSUL             Consul's HTTP address, host:port (default consul:8500): its host serves DNS
#   CONSUL_DNS         Consul's DNS, host:port (default: CONSUL's host, port 8600)
#   SERVICE_NAME       the service mysqlpilot registers (default mysql)
#   HAPROXY_MAX_NODES  server slots per backend (default 9)
#   REPLICA_MAX_LAG    reads only from replicas at most this far behind, e.g. 5s (default:
#                      each node's own mysql.maxLag)
#
# With --watch-consul (run by HAProxy's master, the cfg's `program` section) it watches the
# address the consul host resolves to: HAProxy resolves its nameserver's name only when it
# reads the configuration, so when Consul comes back with another address (a recreated
# container) it asks the master to reload (SIGUSR2), which resolves it again.
set -euo pipefail

consul=${CONSUL:-consul:8500}
export CONSUL_DNS=${CONSUL_DNS:-${consul%:*}:8600}
export SERVICE_NAME=${SERVICE_NAME:-mysql}
export HAPROXY_MAX_NODES=${HAPROXY_MAX_NODES:-9}
export REPLICA_LAG_QUERY=${REPLICA_MAX_LAG:+?lag=$REPLICA_MAX_LAG}

if [ "${1:-}" != --watch-consul ]; then
  exec haproxy -db -f /etc/haproxy/haproxy.cfg "$@"
fi

host=${CONSUL_DNS%:*}
addr() { getent ahostsv4 "$host" | awk 'NR == 1 { print $1 }'; }
case $host in
  *[!0-9.]*) ;;
  *) exec sleep infinity ;; # an IP address: nothing to watch
esac
first=$(addr || true)
# `sleep & wait` so that the master's SIGTERM (on reload or stop) ends the script at once.
trap 'exit 0' TERM INT
while :; do
  sleep 5 &
  wait $! || true
  now=$(addr || true)
  if [ -n "$now" ] && [ "$now" != "$first" ]; then
    echo "haproxy-entrypoint: $host is now $now (was ${first:-unresolved}): reloading HAProxy" >&2
    kill -USR2 "$PPID"
    exit 0
  fi
done
