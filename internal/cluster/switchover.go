package cluster

import (
	"context"
	"encoding/json"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

// SetSwitchover writes <prefix>switchover, or deletes it when sw is nil.
func (k *Cluster) SetSwitchover(ctx context.Context, sw *ha.Switchover) error {
	key := k.o.Prefix + keySwitchover
	var err error
	if sw == nil {
		err = k.c.Delete(ctx, key)
	} else {
		var b []byte
		if b, err = json.Marshal(sw); err == nil {
			err = k.c.Put(ctx, key, b)
		}
	}
	if err != nil {
		return err
	}
	k.poke()
	return nil
}

// RequestSwitchover records an operator's request, unless one is already pending.
func (k *Cluster) RequestSwitchover(ctx context.Context, sw *ha.Switchover) (bool, error) {
	b, err := json.Marshal(sw)
	if err != nil {
		return false, err
	}
	ok, err := k.c.CAS(ctx, k.o.Prefix+keySwitchover, b, 0)
	if err == nil && ok {
		k.poke()
	}
	return ok, err
}
