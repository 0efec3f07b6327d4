package snapshot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
)

func TestSampleTables(t *testing.T) {
	var all []table
	for i := range 10 {
		all = append(all, table{"app", fmt.Sprintf("t%d", i)})
	}
	if got := sampleTables(all, 0, nil); len(got) != 10 {
		t.Errorf("sample 0 = %d tables, want all", len(got))
	}
	if got := sampleTables(all, 20, nil); len(got) != 10 {
		t.Errorf("sample 20 of 10 = %d tables, want all", len(got))
	}
	first := func(n int) int { return 0 }
	got := sampleTables(all, 3, first)
	seen := map[table]bool{}
	for i, tb := range got {
		if seen[tb] || (i > 0 && got[i-1].name >= tb.name) {
			t.Fatalf("sample %v: not distinct tables in order", got)
		}
		seen[tb] = true
	}
	if len(got) != 3 {
		t.Errorf("sample 3 = %v", got)
	}
	if q := (table{"a`b", "c"}).quoted(); q != "`a``b`.`c`" {
		t.Errorf("quoted = %s", q)
	}
}

func TestIsLocalFailure(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	cases := []struct {
		name  string
		ctx   context.Context
		err   error
		local bool
	}{
		{"corrupt object", ctx, fmt.Errorf("restore: %w", ErrCorrupt), false},
		{"object gone from the store", ctx, fmt.Errorf("download: %w", storage.ErrNotFound), false},
		{"prepare failed", ctx, errors.New("prepare: mariabackup: exit status 1"), false},
		{"drill cancelled", cancelled, errors.New("anything"), true},
		{"no space", ctx, fmt.Errorf("unpack: %w", syscall.ENOSPC), true},
		{"root password refused", ctx, fmt.Errorf("connect: %w", mysql.ErrAccessDenied), true},
		{"store unreachable", ctx, fmt.Errorf("download: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), true},
		{"marked local", ctx, localErr(errors.New("scratch")), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := isLocalFailure(c.ctx, c.err); got != c.local {
				t.Errorf("isLocalFailure(%v) = %v, want %v", c.err, got, c.local)
			}
		})
	}
}
