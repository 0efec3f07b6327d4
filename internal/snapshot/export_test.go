package snapshot

import "sync"

// For the external tests (node_integration_test.go), which need the Consul catalog of
// internal/cluster and so cannot be in this package.

// Busy is the lock BackupNow holds while this node takes a backup.
func (s *Snapshotter) Busy() *sync.Mutex { return &s.busy }
