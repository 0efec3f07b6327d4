# The Consul ACL policy mysqlpilot needs, and no more, for the default service name "mysql"
# and key prefix "service/mysql/" (with another service.name or consul.prefix, change the
# names below to match). Create it and a token with it, e.g.:
#
#   consul acl policy create -name mysqlpilot -rules @etc/consul-acl-policy.hcl
#   consul acl token create -description mysqlpilot -policy-name mysqlpilot
#
# and give the token's SecretID to mysqlpilot as consul.token (CONSUL_HTTP_TOKEN).
# The integration test TestConsulACLAndTLS runs a cluster with exactly this file.

# Every key and lock of the cluster: leader, members/, sync, history, switchover,
# maintenance, initialized, server-ids/, snapshots/, binlogs/, backup-lock, verify-lock,
# snapshot-request, tls-ca (the cluster CA of mysql.tls auto, its key sealed).
key_prefix "service/mysql/" {
  policy = "write"
}

# The node's session (it holds the leader lock and its member key) is created on the node of
# the Consul agent mysqlpilot talks to: the Consul server's node, or with consul.agent.join
# the node's own agent, named after the mysqlpilot node. To narrow this, name those nodes:
# session "<agent node>" { policy = "write" }.
session_prefix "" {
  policy = "write"
}

# The services it registers with a TTL check each: "mysql" (every node, tagged primary or
# replica), "mysql-primary" (the primary only) and "mysqlpilot" (the alive check the
# session is bound to).
service "mysql" {
  policy = "write"
}
service "mysql-primary" {
  policy = "write"
}
service "mysqlpilot" {
  policy = "write"
}

# Reads at start: the agent's own description (/v1/agent/self) and its node in the catalog.
# To narrow these, name the agents' nodes: agent "<agent node>" and node "<agent node>".
agent_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
