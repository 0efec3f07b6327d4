package cluster

import "github.com/mysqlpilot/mysqlpilot/internal/consul"

// Needs is everything this node writes in Consul, for consul.CheckPermissions at start: each
// key it may write (the sync set and the snapshot records included, which only a primary
// writes, maybe hours later), the services it registers, and its session.
func (k *Cluster) Needs() consul.Needs {
	p := k.o.Prefix
	keys := []string{
		keyLeader, keyMembers + k.o.Node, keySync, keyHistory, keySwitchover, keyMaintenance,
		keyInitialized, keyServerIDs + k.o.Node, keyServerIDs + "next",
		keyLatest, keySnapshots + "permission-check", keyBinlogsLast, keyBackupLock, keyVerifyLock, keyRequest,
		keyTLSCA, // created by the first node of a cluster with mysql.tls auto
	}
	for i := range keys {
		keys[i] = p + keys[i]
	}
	return consul.Needs{
		KeyPrefix: p,
		Keys:      keys,
		Services:  []string{k.o.Service, k.o.Service + "-primary", aliveService},
		Session:   true,
	}
}
