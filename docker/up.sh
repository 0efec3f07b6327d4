#!/usr/bin/env bash
# Starts the compose cluster the way a user would (`up -d`, then scale) and waits, with a
# deadline, until Consul reports a passing primary and SCALE-1 passing replicas.
#
# usage: docker/up.sh [--preflight]     (--preflight: only check docker, curl and the ports)
#   CONSUL_UI_PORT (8500)  host port of Consul's UI/API, published on 127.0.0.1
#   MYSQL_WRITE_PORT (3306), MYSQL_READ_PORT (3307)  HAProxy's ports for writes and reads (127.0.0.1)
#   MYSQLPILOT_PAGE_PORT (8080)  the topology page, through HAProxy (127.0.0.1)
#   SCALE (3)              mysql containers
#   WAIT_TIMEOUT (180)     seconds to wait for a healthy cluster
#   COMPOSE (docker-compose), COMPOSE_FILE / COMPOSE_PROJECT_NAME as docker-compose reads them
set -euo pipefail

COMPOSE=${COMPOSE:-docker-compose}
PORT=${CONSUL_UI_PORT:-8500}
WRITE_PORT=${MYSQL_WRITE_PORT:-3306}
READ_PORT=${MYSQL_READ_PORT:-3307}
PAGE_PORT=${MYSQLPILOT_PAGE_PORT:-8080}
SCALE=${SCALE:-3}
TIMEOUT=${WAIT_TIMEOUT:-180}
SERVICE=${SERVICE_NAME:-mysql}     # the name mysqlpilot registers in Consul
NODES=mysql                        # the compose service
CONSUL_URL="http://127.0.0.1:$PORT"

die() { echo "up: $*" >&2; exit 1; }

# Our own container of service $1 publishing its port $2 on host port $3 already (a second
# `make up`)?
ours_on_port() {
  local id
  id=$($COMPOSE ps -q "$1" 2>/dev/null || true)
  [ -n "$id" ] && docker port "$id" "$2/tcp" 2>/dev/null | grep -q ":$3\$"
}

# Fails when host port $3 is taken by anything but our own service $1 (port $2); $4 names it.
port_free() {
  ours_on_port "$1" "$2" "$3" && return 0
  if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$3" 2>/dev/null; then
    die "host port $3 ($4 on 127.0.0.1) is already in use: stop what listens there, or choose another port, e.g. $5 make up"
  fi
}

preflight() {
  docker info >/dev/null 2>&1 ||
    die "docker daemon not reachable: start it with 'service docker start' (or run 'dockerd &' as root), then retry"
  command -v "$COMPOSE" >/dev/null || die "$COMPOSE not found: install docker-compose (1.29 works) or set COMPOSE=..."
  command -v curl >/dev/null || die "curl not found: it is needed to ask Consul for the cluster's health"
  port_free consul 8500 "$PORT" "Consul UI/API" CONSUL_UI_PORT=18500
  port_free haproxy 3306 "$WRITE_PORT" "HAProxy, MySQL writes" MYSQL_WRITE_PORT=13306
  port_free haproxy 3307 "$READ_PORT" "HAProxy, MySQL reads" MYSQL_READ_PORT=13307
  port_free haproxy 8080 "$PAGE_PORT" "HAProxy, the topology page" MYSQLPILOT_PAGE_PORT=18080
}

# Number of instances of service $1 (optionally with tag $2) whose checks all pass.
count() {
  local body
  body=$(curl -fsS --max-time 5 "$CONSUL_URL/v1/health/service/$1?passing${2:+&tag=$2}" 2>/dev/null) || body=
  grep -o '"Service":{' <<<"$body" | wc -l || true
}

# Waits until there is one passing primary and $1 passing replicas, or the deadline passes.
wait_for() {
  local want=$1 p r last=
  while :; do
    p=$(count "$SERVICE-primary")
    r=$(count "$SERVICE" replica)
    [ "$p $r" = "$last" ] || echo "up: Consul reports primary: $p/1, replicas: $r/$want"
    last="$p $r"
    [ "$p" -eq 1 ] && [ "$r" -ge "$want" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "up: TIMED OUT after ${TIMEOUT}s waiting for 1 passing $SERVICE-primary and $want passing $SERVICE replicas (have $p and $r)." >&2
      echo "up: containers:" >&2
      $COMPOSE ps >&2 || true
      echo "up: last logs:" >&2
      $COMPOSE logs --no-color --tail=40 >&2 || true
      exit 1
    fi
    sleep 2
  done
}

preflight
[ "${1:-}" = --preflight ] && exit 0

deadline=$((SECONDS + TIMEOUT))
if [ -z "$($COMPOSE ps -q "$NODES" 2>/dev/null || true)" ]; then
  # A new cluster: one node first (it becomes the primary), then the others join it.
  $COMPOSE up -d
  wait_for 0
fi
# (`up -d` alone would scale an existing cluster back to one node: always pass --scale.)
$COMPOSE up -d --scale "$NODES=$SCALE"
wait_for $((SCALE - 1))

# HAProxy routes once its own checks (every 250 ms while a node is down) agree with Consul: a
# MySQL server's greeting through the port says it does (HAProxy closes the connection at once
# while it has no server for it).
greets() {
  [ "$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -c 16 <&3" 2>/dev/null | wc -c)" -ge 16 ]
}
ports=$WRITE_PORT
[ "$SCALE" -gt 1 ] && ports="$ports $READ_PORT"
for port in $ports; do
  until greets "$port"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "up: TIMED OUT after ${TIMEOUT}s: HAProxy routes no MySQL connection on 127.0.0.1:$port." >&2
      $COMPOSE logs --no-color --tail=40 haproxy >&2 || true
      exit 1
    fi
    sleep 1
  done
done

# The page answers once HAProxy has a live node for it.
until curl -fsS --max-time 3 -o /dev/null "http://127.0.0.1:$PAGE_PORT/cluster"; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "up: TIMED OUT after ${TIMEOUT}s: the topology page does not answer on http://127.0.0.1:$PAGE_PORT/." >&2
    exit 1
  fi
  sleep 1
done

# Where the primary is: its service address, and the container that has it.
body=$(curl -fsS --max-time 5 "$CONSUL_URL/v1/health/service/$SERVICE-primary?passing")
addr=$(sed -n 's/.*"Service":{[^}]*"Address":"\([^"]*\)".*/\1/p' <<<"$body")
name=$addr net=
for id in $($COMPOSE ps -q "$NODES"); do
  if docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$id" | grep -qw -- "$addr"; then
    name=$(docker inspect -f '{{.Name}}' "$id") name=${name#/}
    net=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$id")
  fi
done
cat <<EOF

mysqlpilot is up: primary $name ($addr:3306) and $((SCALE - 1)) replicas, all passing in Consul.
  Writes (HAProxy):     mariadb -h 127.0.0.1 -P $WRITE_PORT -u ${MYSQL_USER:-app} -p -D ${MYSQL_DATABASE:-app}
                        (always the primary: HAProxy follows failovers; password: MYSQL_PASSWORD)
  Reads (HAProxy):      mariadb -h 127.0.0.1 -P $READ_PORT -u ${MYSQL_USER:-app} -p -D ${MYSQL_DATABASE:-app}
                        (the healthy replicas, round robin)
  Topology page:        http://127.0.0.1:$PAGE_PORT/  (and /cluster as JSON)
  Consul UI:            http://127.0.0.1:$PORT/ui
  SQL on the primary:   docker exec -it $name mariadb -uroot -p
                        (the root password is MYSQL_ROOT_PASSWORD; the compose file's default
                         is for trying it out only)
  From a container:     on network ${net% }: haproxy:3306 (writes), haproxy:3307 (reads);
                        the primary itself is $addr:3306
                        (or $SERVICE-primary.service.consul with docker-compose.dns.yml)
  Who is primary now:   curl -s '$CONSUL_URL/v1/health/service/$SERVICE-primary?passing'
  Node status:          docker exec $name mysqlpilot status
  More nodes:           $COMPOSE up -d --scale $NODES=5
  Stop and delete all:  make down
EOF
