package cluster

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

// keyHistory is the failover history (DESIGN.md section 2): the last ha.HistoryLen changes
// of primary, oldest first, written by each new primary once it opened writes. For people
// (the topology page, /cluster): no decision reads it.
const keyHistory = "history"

// RecordFailover appends f to the history, keeping the last ha.HistoryLen (CAS, retried).
func (k *Cluster) RecordFailover(ctx context.Context, f ha.Failover) error {
	for range casRetries {
		kv, _, err := k.c.Get(ctx, k.o.Prefix+keyHistory)
		if err != nil {
			return err
		}
		var hist []ha.Failover
		var idx uint64
		if kv != nil {
			idx = kv.ModifyIndex
			_ = json.Unmarshal(kv.Value, &hist) // unreadable: start afresh
		}
		hist = append(hist, f)
		if len(hist) > ha.HistoryLen {
			hist = hist[len(hist)-ha.HistoryLen:]
		}
		b, err := json.Marshal(hist)
		if err != nil {
			return err
		}
		ok, err := k.c.CAS(ctx, k.o.Prefix+keyHistory, b, idx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return errors.New("failover history: too many concurrent writers")
}

func parseHistory(b []byte) []ha.Failover {
	var hist []ha.Failover
	if json.Unmarshal(b, &hist) != nil {
		return nil
	}
	return hist
}

// parseLatest is the cluster view's summary of the latest snapshot record.
func parseLatest(b []byte) *ha.SnapshotInfo {
	var s ha.SnapshotInfo
	if json.Unmarshal(b, &s) != nil || s.ID == "" {
		return nil
	}
	return &s
}
