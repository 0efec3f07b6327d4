package snapshot

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/local"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

func TestProbePipeline(t *testing.T) {
	if _, err := os.Stat("/tmp/exp/big.xb"); err != nil {
		t.Skip()
	}
	for _, c := range []string{"none", "zstd", "none", "zstd"} {
		dir := t.TempDir()
		st, _ := local.New(dir)
		o := BackupOptions{Runner: supervisor.ExecRunner{}, Flavor: mysql.MariaDB, Store: st, Compress: c, Log: slog.New(slog.DiscardHandler)}
		start := time.Now()
		res, err := streamUp(context.Background(), o, "x", supervisor.Cmd{Name: "cat", Path: "cat", Args: []string{"/tmp/exp/big.xb"}}, o.Log)
		d := time.Since(start)
		t.Logf("%s: %v %.0f MB/s stored %d", c, err, float64(res.raw)/(1<<20)/d.Seconds(), res.size)
		os.RemoveAll(dir)
	}
}
