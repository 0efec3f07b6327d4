# mysqlpilot/haproxy: the cluster's stable front door. Port 3306 reaches the primary, 3307 the
# healthy replicas, whichever nodes they are; etc/haproxy.cfg says how (servers from Consul's
# DNS, checks against mysqlpilot's GET /primary and GET /replica on port 9104).
#
# `make image-haproxy` builds it (docker/build-image.sh, context: the two files copied below);
# by hand, from the repository root:
#   docker build -f docker/haproxy.Dockerfile -t mysqlpilot/haproxy:latest .
#
# HAProxy is Debian's package (2.6), installed from the Debian mirror at build time on the
# same local base image as the mysql image (docker/make-base-image.sh): no registry is needed,
# but the build needs the mirror (deb.debian.org, as the base image's sources.list names it).
ARG BASE_IMAGE=mysqlpilot/base-mariadb:bookworm
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="mysqlpilot-haproxy" \
      org.opencontainers.image.description="HAProxy routing writes to the mysqlpilot primary and reads to its replicas"

RUN apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null && \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log /etc/haproxy/haproxy.cfg

COPY etc/haproxy.cfg /etc/haproxy/haproxy.cfg
COPY docker/haproxy-entrypoint.sh /usr/local/bin/haproxy-entrypoint.sh

# 3306 writes, 3307 reads, 8080 mysqlpilot's topology page, 8404 stats page (/stats) and
# Prometheus metrics (/metrics).
EXPOSE 3306 3307 8080 8404
USER haproxy
# HAProxy's master is PID 1 (haproxy -W -db): it reaps its workers and handles signals.
# SIGUSR2 reloads the configuration; SIGTERM (docker stop) stops at once.
ENTRYPOINT ["/usr/local/bin/haproxy-entrypoint.sh"]
