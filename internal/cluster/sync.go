package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

// keySync is the sync-set record (DESIGN.md section 2): the members the primary allows to
// acknowledge its commits, written only while the writer holds the leader lock.
const keySync = "sync"

// SetSyncSet writes the sync set, only while session holds the leader lock (one Consul
// transaction checks the lock and writes).
func (k *Cluster) SetSyncSet(ctx context.Context, session string, s ha.SyncSet) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	ok, err := k.c.PutIfHeld(ctx, k.o.Prefix+keySync, b, k.o.Prefix+keyLeader, session)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the leader lock is not held by this node's session: sync set not written")
	}
	k.poke()
	return nil
}

func parseSyncSet(b []byte) *ha.SyncSet {
	var s ha.SyncSet
	if json.Unmarshal(b, &s) != nil || s.Leader == "" {
		return nil
	}
	return &s
}

// AcceptLoss is the operator's `mysqlpilot accept-loss`: with the leader lock free, it drops
// what keeps the cluster from failing over to the live members, losing the writes that only
// an unreachable node may hold: the sync-set record, and the member key of a last primary
// that said it acknowledged writes alone. It returns what it removed.
func (k *Cluster) AcceptLoss(ctx context.Context) ([]string, error) {
	v, err := k.View(ctx)
	if err != nil {
		return nil, err
	}
	if v.Leader != nil {
		return nil, fmt.Errorf("%s holds the leader lock: nothing to accept (accept-loss is for a cluster waiting for a lost primary or sync-set member)", v.Leader.Node)
	}
	var removed []string
	if v.Sync != nil {
		// Deleted only as read: a new primary that took the lock meanwhile has written its
		// own record, which must stand.
		kv, _, err := k.c.Get(ctx, k.o.Prefix+keySync)
		if err != nil {
			return removed, err
		}
		if kv != nil {
			if rec := parseSyncSet(kv.Value); rec == nil || rec.Leader != v.Sync.Leader {
				return removed, errors.New("the sync set changed meanwhile (a new primary?): nothing dropped; look at `mysqlpilot status` again")
			}
			ok, err := k.c.DeleteCAS(ctx, k.o.Prefix+keySync, kv.ModifyIndex)
			if err != nil {
				return removed, err
			}
			if !ok {
				return removed, errors.New("the sync set changed meanwhile (a new primary?): nothing dropped; look at `mysqlpilot status` again")
			}
		}
		removed = append(removed, fmt.Sprintf("the sync set of %s %v", v.Sync.Leader, v.Sync.Members))
	}
	for _, m := range v.Members {
		if m.Alone && !m.Live {
			if err := k.c.Delete(ctx, k.o.Prefix+keyMembers+m.Node); err != nil {
				return removed, err
			}
			removed = append(removed, "the member key of "+m.Node+" (it acknowledged writes alone)")
		}
	}
	k.poke()
	return removed, nil
}
