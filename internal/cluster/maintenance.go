package cluster

import (
	"context"
)

// SetMaintenance turns maintenance mode on or off (operator CLI).
func (k *Cluster) SetMaintenance(ctx context.Context, on bool) error {
	if on {
		return k.c.Put(ctx, k.o.Prefix+keyMaintenance, []byte(`{"by":"operator"}`))
	}
	return k.c.Delete(ctx, k.o.Prefix+keyMaintenance)
}
