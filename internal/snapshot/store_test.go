package snapshot

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/mysqlpilot/mysqlpilot/internal/config"
	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestNewStore(t *testing.T) {
	cfg := config.Default()
	cfg.Snapshot.Backend = "local"
	cfg.Storage.Local.Dir = t.TempDir()
	st, backend, err := NewStore(cfg)
	if err != nil || st == nil || backend != "local" {
		t.Fatalf("local: %v, %s, %v", st, backend, err)
	}
	cfg.Snapshot.Backend = "none"
	if st, _, err := NewStore(cfg); err != nil || st != nil {
		t.Fatalf("none: %v, %v", st, err)
	}
	cfg.Snapshot.Backend = "tape"
	if _, _, err := NewStore(cfg); err == nil || !strings.Contains(err.Error(), "snapshot.backend") {
		t.Fatalf("unknown backend: %v", err)
	}
	cfg.Snapshot.Backend = "s3"
	cfg.Storage.S3 = config.S3Storage{Endpoint: "127.0.0.1:9", Bucket: "b", AccessKey: "k", SecretKey: "very-secret", PartSize: 16}
	st, _, err = NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(st.String(), "very-secret") {
		t.Errorf("store name holds the secret: %s", st)
	}
	cfg.Snapshot.Backend = "none"
	s, err := NewSnapshotter(cfg, mysql.MariaDB, nil, nil, discard())
	if err != nil || s != nil {
		t.Fatalf("snapshotter for backend none = %v, %v; want nil, nil", s, err)
	}
}
