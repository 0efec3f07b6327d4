# mysqlpilot/consul:1.16.3: a single Consul server from scratch, for trying mysqlpilot out.
#
# Consul v1.16.3 is the last MPL-2.0 release; test/tools/install-consul.sh builds it as a
# static binary. The build context is a directory holding only that binary, which
# `make image-consul` (docker/build-image.sh) makes; by hand:
#   mkdir ctx && cp ~/.cache/mysqlpilot/bin/consul ctx/
#   docker build -f docker/consul.Dockerfile -t mysqlpilot/consul:1.16.3 ctx
#
# One server with -bootstrap-expect=1 is not highly available: production runs 3 or 5 servers
# and a Consul client agent per host. Its data dir is a volume, so a restarted (or recreated)
# container keeps its Raft state: KV, sessions and the catalog survive.
FROM scratch

COPY consul /bin/consul
# scratch has no /tmp: WORKDIR creates the directories Consul (and Go's os.TempDir) use.
WORKDIR /tmp
WORKDIR /consul/data
ENV HOME=/consul

VOLUME /consul/data
# 8500 HTTP API + UI, 8600 DNS (tcp+udp), 8300-8302 server RPC and gossip.
EXPOSE 8500 8600 8600/udp 8300 8301 8301/udp 8302 8302/udp

# Healthy once this server has elected a leader (list-peers fails without one).
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/bin/consul", "operator", "raft", "list-peers"]

# -node is fixed so a recreated container (new hostname, maybe a new IP) is the same node.
# -advertise names eth0: under `docker stack deploy` the container has several private
# addresses (ingress, the stack's overlay, docker_gwbridge) and Consul refuses to start
# without being told which one to advertise; under docker-compose eth0 is the only one.
# raft_multiplier=1 elects the single server in ~1-2s instead of ~8s (the default 5 is
# tuned for slow shared cloud VMs); the update check would phone home.
# Extra flags go in CMD / compose `command:` (e.g. "-dns-port=53", "-log-level=debug").
ENTRYPOINT ["/bin/consul", "agent", "-server", "-bootstrap-expect=1", "-node=consul", \
            "-bind=0.0.0.0", "-advertise={{ GetInterfaceIP `eth0` }}", \
            "-client=0.0.0.0", "-ui", "-data-dir=/consul/data", \
            "-hcl=performance { raft_multiplier = 1 }", "-hcl=disable_update_check = true"]
CMD []
