#!/usr/bin/env bash
# System smoke test of the compose cluster, as a user would drive it: 3 nodes up, a write on
# the primary reaches the replicas, replicas refuse writes, stopping the primary hands over
# to a replica that has the data, and the old primary comes back as a replica.
# Runs in its own compose project on a free loopback port and always removes it afterwards.
#
# usage: docker/smoke-test.sh        (the images must exist: `make images`)
set -euo pipefail
cd "$(dirname "$0")/.."

export COMPOSE_PROJECT_NAME=${SMOKE_PROJECT:-mysqlpilot-smoke}
export COMPOSE_FILE=docker-compose.yml
export SCALE=3 WAIT_TIMEOUT=${WAIT_TIMEOUT:-180}
# Throwaway passwords, handed to mysqlpilot and to `docker exec -e MYSQL_PWD` through the
# environment only (never argv). Data goes through the application user, as a client's would:
# on MariaDB, root (READ_ONLY ADMIN) may write even with read_only on.
rand() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
MYSQL_ROOT_PASSWORD=$(rand) MYSQL_REPL_PASSWORD=$(rand) MYSQL_PASSWORD=$(rand)
MYSQL_USER=smoke MYSQL_DATABASE=smoke MYSQL_PWD=$MYSQL_PASSWORD
export MYSQL_ROOT_PASSWORD MYSQL_REPL_PASSWORD MYSQL_PASSWORD MYSQL_USER MYSQL_DATABASE MYSQL_PWD

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "smoke: ok   - $*"; }
fail() { failed=$((failed + 1)); echo "smoke: FAIL - $*" >&2; }
# check DESCRIPTION CMD...: one test case.
check() { local d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }

# A free loopback port for Consul's UI, so a developer's own cluster on 8500 is left alone.
for port in $(seq 18500 18520); do
  timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null || break
done
export CONSUL_UI_PORT=$port
consul="http://127.0.0.1:$port"

finish() {
  local rc=$?
  if [ "$rc" != 0 ] || [ "$failed" != 0 ]; then
    docker-compose ps >&2 || true
    docker-compose logs --no-color --tail=60 >&2 || true
  fi
  docker-compose down -v --remove-orphans >/dev/null 2>&1 || true
  echo "smoke: $passed passed, $failed failed"
  [ "$rc" = 0 ] && [ "$failed" = 0 ]
}
trap finish EXIT

# Container of the passing primary ("" if none): its Consul service address -> container.
primary() {
  local addr id
  addr=$(curl -fsS --max-time 5 "$consul/v1/health/service/mysql-primary?passing" 2>/dev/null |
    sed -n 's/.*"Service":{[^}]*"Address":"\([^"]*\)".*/\1/p') || true
  [ -n "$addr" ] || return 0
  for id in $(docker-compose ps -q mysql); do
    docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$id" |
      grep -qw -- "$addr" && { echo "$id"; return 0; }
  done
}
sql() { local c=$1; shift; docker exec -e MYSQL_PWD "$c" mariadb -u"$MYSQL_USER" -N -B -e "$*"; }
# until SECONDS CMD...: retries CMD every second until it succeeds or SECONDS pass.
until_ok() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ "$SECONDS" -lt "$end" ] || return 1; sleep 1; done
}
row_is() { [ "$(sql "$1" "SELECT v FROM smoke.t WHERE id = $2")" = "$3" ]; }
refuses_write() { ! sql "$1" "INSERT INTO smoke.t VALUES (99, 'errant')" 2>/dev/null; }

docker/up.sh >/dev/null
ok "3 nodes up: 1 passing primary, 2 passing replicas"

p=$(primary)
[ -n "$p" ] || { fail "no primary container found"; exit 1; }
check "write on the primary ${p:0:12}" \
  sql "$p" "CREATE TABLE smoke.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO smoke.t VALUES (1, 'before')"

for r in $(docker-compose ps -q mysql); do
  [ "$r" = "$p" ] && continue
  check "replica ${r:0:12} has the row within 30s" until_ok 30 row_is "$r" 1 before
  check "replica ${r:0:12} refuses writes" refuses_write "$r"
done

# Graceful stop of the primary: a replica must take over, with the data, within seconds.
t0=$SECONDS
docker stop -t 30 "$p" >/dev/null
new=
newer_primary() { new=$(primary); [ -n "$new" ] && [ "$new" != "$p" ]; }
if until_ok 60 newer_primary; then
  new=$(primary)
  ok "handover to ${new:0:12} in $((SECONDS - t0))s after docker stop of ${p:0:12}"
  check "new primary has the old row" row_is "$new" 1 before
  check "new primary takes writes" sql "$new" "INSERT INTO smoke.t VALUES (2, 'after')"
else
  fail "no new primary within 60s of stopping the old one"
  exit 1
fi

# The old primary comes back and rejoins as a replica with the new write.
docker start "$p" >/dev/null
replicas_back() {
  [ "$(curl -fsS --max-time 5 "$consul/v1/health/service/mysql?passing&tag=replica" | grep -o '"Service":{' | wc -l)" -ge 2 ]
}
check "old primary ${p:0:12} rejoined as a passing replica within 120s" until_ok 120 replicas_back
check "old primary ${p:0:12} has the new primary's write" until_ok 30 row_is "$p" 2 after

# Failover: SIGKILL the primary's container (no handover possible). Its Consul checks expire
# and a replica with every acknowledged write takes the lock.
p=$(primary)
t0=$SECONDS
docker kill -s KILL "$p" >/dev/null
if until_ok 60 newer_primary; then
  new=$(primary)
  ok "failover to ${new:0:12} in $((SECONDS - t0))s after SIGKILL of ${p:0:12}"
  check "failed-over primary has every write" row_is "$new" 2 after
  check "failed-over primary takes writes" sql "$new" "INSERT INTO smoke.t VALUES (3, 'failover')"
else
  fail "no new primary within 60s of killing the old one"
fi
docker start "$p" >/dev/null
check "killed primary ${p:0:12} rejoined as a passing replica within 120s" until_ok 120 replicas_back
check "killed primary ${p:0:12} has the write made after failover" until_ok 30 row_is "$p" 3 failover
