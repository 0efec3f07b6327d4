package snapshot

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// exitingServer is a server that exits at once (a datadir it cannot start on).
type exitingServer struct{}

func (exitingServer) Run(context.Context, supervisor.Cmd) error {
	return &supervisor.ExitError{Name: "mariadbd", Stderr: "[ERROR] InnoDB: cannot open the datadir"}
}

// A private server that exits before it answers is reported at once, with its exit, and
// start leaves nothing behind. (The replay's own copy of this code used to wait for ever
// here: its watcher took the exit and its stop then waited for it again.)
func TestPrivateServerThatExitsIsReportedAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, stop, err := privateServer{Name: "replay", Flavor: mysql.MariaDB, Runner: exitingServer{}, Binary: "mariadbd",
			Datadir: t.TempDir(), RootPassword: "a-long-enough-password", StartTimeout: time.Hour, StopTimeout: time.Hour,
			Log: slog.New(slog.DiscardHandler)}.start(ctx)
		if stop != nil {
			stop()
		}
		done <- err
	}()
	select {
	case err := <-done:
		var exit *supervisor.ExitError
		if err == nil || !errors.As(err, &exit) || !strings.Contains(err.Error(), "did not start on the restored datadir") {
			t.Fatalf("err = %v, want the server's exit, saying it did not start", err)
		}
	case <-ctx.Done():
		t.Fatal("start did not return after the server exited")
	}
}
