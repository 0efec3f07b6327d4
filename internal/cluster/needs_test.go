package cluster

import (
	"slices"
	"testing"
)

// TestNeeds_CoversWhatOnlyAPrimaryWrites: the start-up check must probe the keys a node
// writes only much later, as primary (the sync set, the snapshot records, the history), and
// every service it registers.
func TestNeeds_CoversWhatOnlyAPrimaryWrites(t *testing.T) {
	k := New(nil, Options{Prefix: "service/db/", Service: "db", Node: "n7"}, nil)
	n := k.Needs()
	for _, key := range []string{"leader", "members/n7", "sync", "history", "snapshots/latest", "binlogs/last",
		"backup-lock", "snapshot-request", "server-ids/n7", "server-ids/next", "switchover", "maintenance", "initialized"} {
		if !slices.Contains(n.Keys, "service/db/"+key) {
			t.Errorf("Needs does not probe service/db/%s", key)
		}
	}
	if want := []string{"db", "db-primary", "mysqlpilot"}; !slices.Equal(n.Services, want) {
		t.Errorf("services %v, want %v", n.Services, want)
	}
	if !n.Session || n.KeyPrefix != "service/db/" {
		t.Errorf("needs %+v", n)
	}
}
