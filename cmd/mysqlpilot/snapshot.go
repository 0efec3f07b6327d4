package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/cluster"
	"github.com/mysqlpilot/mysqlpilot/internal/config"
	"github.com/mysqlpilot/mysqlpilot/internal/control"
	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// cmdBackup is `mysqlpilot backup`: it asks the running node, through its control socket, to
// take a snapshot now, and waits for it (unless --no-wait). The backup runs in the node: an
// interrupted command does not abort it.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, sock := controlFlags("backup", "backup [--no-wait] [--json]", stderr)
	noWait := fs.Bool("no-wait", false, "return once the backup has started")
	asJSON := fs.Bool("json", false, "print the snapshot's record as JSON")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	path := "/backup"
	if *noWait {
		path += "?wait=false"
	}
	var resp control.BackupResponse
	// No overall timeout: a backup may take hours; ctx bounds it.
	if err := control.NewClient(*sock, 0).Do(ctx, http.MethodPost, path, &resp); err != nil {
		fmt.Fprintln(stderr, "mysqlpilot backup:", err)
		return 1
	}
	switch {
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(resp)
	case resp.Record == nil:
		fmt.Fprintf(stdout, "snapshot %s started; follow the node's log\n", resp.ID)
	default:
		r := resp.Record
		fmt.Fprintf(stdout, "snapshot %s complete: %s (%d bytes, %s), gtid %s\n", r.ID, r.Path, r.Size, r.Compress, r.GTID)
	}
	return 0
}

// cmdRestore is `mysqlpilot restore`: a point-in-time restore into a new datadir, run
// standalone (not through the node): the newest snapshot before the target, rolled forward
// with the archived binlogs, checked before the datadir is touched. Start the node on the
// datadir afterwards as a new cluster's first primary.
func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("restore", "restore (--to-time T | --to-gtid G) --datadir DIR [--config FILE] [flags]", stderr)
	path := fs.String("config", config.DefaultPath, "config file (its snapshot and storage sections say where snapshots are)")
	toTime := fs.String("to-time", "", "restore transactions stamped before this time (RFC 3339, e.g. 2026-11-25T16:00:00Z; one-second resolution)")
	toGTID := fs.String("to-gtid", "", "restore up to and including these GTIDs")
	datadir := fs.String("datadir", "", "datadir to create (an existing one is moved aside to DIR.old-<time>, never deleted)")
	tempDir := fs.String("temp-dir", "", "scratch space for the unpacked snapshot and the binlogs (default snapshot.tempDir)")
	allowIncomplete := fs.Bool("allow-incomplete", false, "restore what the archive holds even when it ends before the target")
	fromConsul := fs.Bool("from-consul", false, "find snapshots in Consul instead of the store's manifests")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 || *datadir == "" || (*toTime == "") == (*toGTID == "") {
		fmt.Fprintln(stderr, "mysqlpilot restore: give --datadir and exactly one of --to-time and --to-gtid")
		fs.Usage()
		return 2
	}
	req := snapshot.PITRRequest{UntilGTID: *toGTID, Datadir: *datadir, TempDir: *tempDir,
		AllowIncomplete: *allowIncomplete}
	if *toTime != "" {
		t, err := parseTime(*toTime)
		if err != nil {
			fmt.Fprintln(stderr, "mysqlpilot restore: --to-time:", err)
			return 2
		}
		req.Until = t
	}
	cfg, err := loadConfig(*path, fs.Changed("config"))
	if err != nil {
		fmt.Fprintln(stderr, "mysqlpilot:", strings.ReplaceAll(err.Error(), "\n", "\nmysqlpilot: "))
		return 2
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	flavor, err := mysql.ParseFlavor(cfg.MySQL.Flavor)
	if err != nil {
		fmt.Fprintln(stderr, "mysqlpilot restore: config: mysql.flavor:", err)
		return 1
	}
	var cat snapshot.Catalog // nil: the store's manifests
	if *fromConsul {
		c, err := newConsul(cfg, log)
		if err != nil {
			fmt.Fprintln(stderr, "mysqlpilot restore: consul:", err)
			return 1
		}
		cat = cluster.NewCatalog(c, cfg.Consul.Prefix, cfg.Node, log)
	}
	// A standalone command: no supervisor reaps here, so os/exec runs the tools.
	res, err := snapshot.PointInTimeRestore(ctx, cfg, flavor, req, cat, supervisor.ExecRunner{Env: supervisor.ScrubEnv(os.Environ(), cfg.Secrets())}, log)
	if err != nil {
		fmt.Fprintln(stderr, "mysqlpilot restore:", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored snapshot %s and %d archived binlogs into %s\ngtid: %s\n", res.Snapshot.ID, len(res.Binlogs), *datadir, res.GTID)
	if res.Restore.MovedAside != "" {
		fmt.Fprintf(stdout, "the previous datadir is in %s\n", res.Restore.MovedAside)
	}
	return 0
}

// parseTime accepts RFC 3339 and "YYYY-MM-DD HH:MM:SS" (UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateTime, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-11-25T16:00:00Z) nor \"2026-11-25 16:00:00\" (UTC)", s)
}
