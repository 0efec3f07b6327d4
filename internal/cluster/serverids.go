package cluster

import (
	"context"
	"errors"
	"fmt"
)

// ServerID returns this node's server_id, allocating a new cluster-unique one with a CAS
// counter when it has none: stable per node, never a hash that could collide. fresh forces a
// new one: a datadir restored from a snapshot must not keep the server_id it wrote under
// before, because a server skips replicated events that carry its own server_id, and the
// transactions this node wrote after the snapshot would never come back to it.
func (k *Cluster) ServerID(ctx context.Context, fresh bool) (uint32, error) {
	key := k.o.Prefix + keyServerIDs + k.o.Node
	if kv, _, err := k.c.Get(ctx, key); err != nil {
		return 0, err
	} else if kv != nil && !fresh {
		var id uint32
		if _, err := fmt.Sscan(string(kv.Value), &id); err == nil && id > 0 {
			return id, nil
		}
	}
	next := k.o.Prefix + keyServerIDs + "next"
	for i := 0; i < 50; i++ {
		kv, _, err := k.c.Get(ctx, next)
		if err != nil {
			return 0, err
		}
		var cur uint32 = 1000
		var idx uint64
		if kv != nil {
			fmt.Sscan(string(kv.Value), &cur)
			idx = kv.ModifyIndex
		}
		ok, err := k.c.CAS(ctx, next, []byte(fmt.Sprint(cur+1)), idx)
		if err != nil {
			return 0, err
		}
		if ok {
			if err := k.c.Put(ctx, key, []byte(fmt.Sprint(cur))); err != nil {
				return 0, err
			}
			return cur, nil
		}
	}
	return 0, errors.New("allocate server_id: too much contention on " + next)
}
