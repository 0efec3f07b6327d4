package cluster

import (
	"context"
	"encoding/json"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

// Acquire takes <prefix>leader for session, writing rec: the lock the primary holds.
func (k *Cluster) Acquire(ctx context.Context, session string, rec ha.LeaderRecord) (bool, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	ok, err := k.c.Acquire(ctx, k.o.Prefix+keyLeader, session, b)
	if ok {
		k.mu.Lock()
		k.held = b
		k.mu.Unlock()
	}
	if err != nil {
		return false, err
	}
	k.poke()
	return ok, nil
}

// Release frees the lock and leaves this node's record in the key, as a session that ends
// does: the next candidates see who held it last (ClusterView.LastLeader).
func (k *Cluster) Release(ctx context.Context, session string) error {
	k.mu.Lock()
	held := k.held
	k.mu.Unlock()
	_, err := k.c.Release(ctx, k.o.Prefix+keyLeader, session, held)
	if err != nil {
		return err
	}
	k.poke()
	return nil
}
