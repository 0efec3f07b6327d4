package cluster

import (
	"context"
	"encoding/json"
	"time"
)

// MarkInitialized writes <prefix>initialized: the cluster has had its first primary.
func (k *Cluster) MarkInitialized(ctx context.Context) error {
	b, _ := json.Marshal(map[string]any{"node": k.o.Node, "at": time.Now().UTC()})
	return k.c.Put(ctx, k.o.Prefix+keyInitialized, b)
}
