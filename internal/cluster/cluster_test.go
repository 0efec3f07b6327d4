package cluster

import (
	"log/slog"
	"testing"

	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

func TestParseClusterKeys(t *testing.T) {
	k := New(nil, Options{Prefix: "service/mysql/"}, slog.New(slog.DiscardHandler))
	v := k.parse([]consul.KV{
		{Key: "service/mysql/leader", Value: []byte(`{"node":"n2","address":"10.0.0.2","port":3306}`), Session: "s2"},
		{Key: "service/mysql/members/n1", Value: []byte(`{"node":"n1","role":"replica","eligible":true}`), Session: "s1"},
		{Key: "service/mysql/members/n3", Value: []byte(`{"node":"n3","role":"replica"}`)},
		{Key: "service/mysql/members/bad", Value: []byte(`{`)},
		{Key: "service/mysql/maintenance", Value: []byte(`{}`)},
		{Key: "service/mysql/switchover", Value: []byte(`{"from":"n2","to":"n1"}`)},
		{Key: "service/mysql/initialized", Value: []byte(`{}`)},
		{Key: "service/mysql/snapshots/latest", Value: []byte(`{}`)},
	})
	if v.Leader == nil || v.Leader.Node != "n2" || v.LeaderSession != "s2" || v.Leader.Address != "10.0.0.2" {
		t.Errorf("leader = %+v session %q", v.Leader, v.LeaderSession)
	}
	if len(v.Members) != 2 || !v.Members[0].Live || v.Members[1].Live {
		t.Errorf("members = %+v (want n1 live, n3 not, the unreadable one skipped)", v.Members)
	}
	if !v.Maintenance || !v.Initialized || v.Switchover == nil || *v.Switchover != (ha.Switchover{From: "n2", To: "n1"}) {
		t.Errorf("flags = maintenance %v initialized %v switchover %+v", v.Maintenance, v.Initialized, v.Switchover)
	}
}

func TestReleasedLeaderKeyMeansFree(t *testing.T) {
	k := New(nil, Options{Prefix: "p/"}, slog.New(slog.DiscardHandler))
	v := k.parse([]consul.KV{{Key: "p/leader", Value: []byte(`{"node":"n1"}`)}})
	if v.Leader != nil {
		t.Errorf("a leader key without a session is a free lock, got %+v", v.Leader)
	}
}
