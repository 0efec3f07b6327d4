package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

// PublishMember writes <prefix>members/<node> under session, so the record goes (Live is
// false) when the session ends.
func (k *Cluster) PublishMember(ctx context.Context, session string, m ha.MemberRecord) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ok, err := k.c.Acquire(ctx, k.o.Prefix+keyMembers+k.o.Node, session, b)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("member key %s%s%s is held by another session", k.o.Prefix, keyMembers, k.o.Node)
	}
	return nil
}
