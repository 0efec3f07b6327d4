package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
	"github.com/mysqlpilot/mysqlpilot/test/bench/lab"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// bootConfig is benchConfig without snapshots on binlog rotation: loading gigabytes rotates
// the binlog, and the scheduler's snapshot would run into the one measured.
func bootConfig(i int, cfg map[string]any) {
	benchConfig(i, cfg)
	cfg["snapshot"].(map[string]any)["onBinlogRotate"] = false
}

// Boot is one replica bootstrap from a snapshot.
type Boot struct {
	Size     int64         // payload written (bytes)
	Datadir  int64         // the primary's datadir on disk after loading
	Load     time.Duration // writing the payload (and replicating it)
	Raw      time.Duration // `mariabackup --backup --stream` of the primary to /dev/null
	RawBytes int64
	Backup   time.Duration // `mysqlpilot backup` (stream, compress, checksum, store, publish)
	Snap     int64         // snapshot object size
	SnapRaw  int64         // stream size before compression
	Restore  time.Duration // the new node's "restore complete ... seconds" (download, verify, extract, prepare, install)
	Download time.Duration // of which "snapshot downloaded and verified" (download, verify, open, decompress, extract)
	Healthy  time.Duration // AddNode -> the new node healthy and the cluster settled
	Err      error
	// Expert is the same bootstrap by hand on the same snapshot (issue 13's reference),
	// measured right after the new node is healthy; its failure leaves the figures above.
	Expert Expert
}

// MBps is bytes per second in MB/s (10^6).
func MBps(b int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(b) / 1e6 / d.Seconds()
}

// parseSize reads "64MiB", "1GiB", "4GiB".
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for suf, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suf) {
			s, mult = strings.TrimSuffix(s, suf), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: use e.g. 256MiB or 4GiB", s)
	}
	return n * mult, nil
}

func sizeName(b int64) string {
	if b >= 1<<30 && b%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", b>>30)
	}
	return fmt.Sprintf("%d MiB", b>>20)
}

// Rows of 4 KiB of random bytes (incompressible: the compressor earns nothing), 64 MiB per
// statement so that no single transaction is huge for the binlog and the replica.
const (
	rowBytes  = 4096
	batchRows = 16384
)

// Bootstrap measures scaling a 2-node cluster holding size bytes out to 3 nodes: the new
// node restores the latest snapshot, sets its GTID position and replicates the rest.
func Bootstrap(t *lab.TB, size int64) (b Boot) {
	b = Boot{Size: size}
	c := harness.StartCluster(t, harness.ClusterOptions{Nodes: 2, Snapshots: true, Mutate: bootConfig})
	defer func() {
		if b.Err != nil {
			if dir, err := lab.KeepLogs(c, "bootstrap"); err == nil {
				b.Err = fmt.Errorf("%w (logs kept in %s)", b.Err, dir)
			}
		}
	}()
	p, err := lab.SettledAmong(c, c.Nodes, Defaults.Settle)
	if err != nil {
		b.Err = err
		return b
	}
	// An empty snapshot first, taken now: the scheduler takes one by itself when the cluster
	// has none, and a backup already running would refuse the one measured below.
	if out, err := p.Control("backup"); err != nil {
		b.Err = fmt.Errorf("first snapshot: %v: %s", err, out)
		return b
	}
	logf("bootstrap %s: loading into %s", sizeName(size), p.Name)
	start := time.Now()
	if err := load(p, size); err != nil {
		b.Err = err
		return b
	}
	// Replicated too (the replica reports healthy only under the lag bound).
	if _, err := lab.SettledAmong(c, c.Nodes, 10*time.Minute); err != nil {
		b.Err = err
		return b
	}
	b.Load = time.Since(start)
	b.Datadir = du(filepath.Join(p.Dir, "data"))

	logf("bootstrap %s: raw backup stream of %s", sizeName(size), p.Name)
	b.Raw, b.RawBytes, err = rawStream(p)
	if err != nil {
		b.Err = err
		return b
	}
	logf("bootstrap %s: mysqlpilot backup on %s", sizeName(size), p.Name)
	start = time.Now()
	out, err := p.Control("backup", "--json")
	b.Backup = time.Since(start)
	if err != nil {
		b.Err = fmt.Errorf("mysqlpilot backup: %v: %s", err, out)
		return b
	}
	// `backup --json` prints control.BackupResponse: {"id", "status", "record"}.
	var resp struct {
		Record snapshot.Record `json:"record"`
	}
	if i := strings.IndexByte(out, '{'); i >= 0 {
		_ = json.Unmarshal([]byte(out[i:]), &resp)
	}
	rec := resp.Record
	b.Snap, b.SnapRaw = rec.Size, rec.RawSize

	logf("bootstrap %s: adding a node", sizeName(size))
	start = time.Now()
	n := c.AddNode()
	if _, err := lab.SettledAmong(c, c.Nodes, 20*time.Minute); err != nil {
		b.Err = err
		return b
	}
	b.Healthy = time.Since(start)
	if !strings.Contains(n.Log(), "restoring the latest snapshot") {
		b.Err = fmt.Errorf("%s did not bootstrap from the snapshot", n.Name)
		return b
	}
	if m := regexp.MustCompile(`msg="restore complete".*seconds=([0-9.]+)`).FindStringSubmatch(n.Log()); m != nil {
		s, _ := strconv.ParseFloat(m[1], 64)
		b.Restore = time.Duration(s * float64(time.Second))
	}
	if m := regexp.MustCompile(`msg="snapshot downloaded and verified".*seconds=([0-9.]+)`).FindStringSubmatch(n.Log()); m != nil {
		s, _ := strconv.ParseFloat(m[1], 64)
		b.Download = time.Duration(s * float64(time.Second))
	}
	logf("bootstrap %s: healthy after %s (restore %s)", sizeName(size), b.Healthy.Round(time.Millisecond), b.Restore)

	// The reference: the same snapshot by hand, once the new node is healthy (the cluster is
	// idle again: no snapshot, drill or load is scheduled), replicating from the same primary.
	b.Expert = expertAfter(t, c, rec, size)
	return b
}

// expertAfter runs expertBootstrap on rec against the settled cluster's primary.
func expertAfter(t *lab.TB, c *harness.Cluster, rec snapshot.Record, size int64) Expert {
	if rec.ID == "" || rec.Path == "" {
		return Expert{Err: errors.New("expert by hand: no snapshot record in `mysqlpilot backup --json`'s output")}
	}
	time.Sleep(5 * time.Second) // the new node's start-up work done
	p, err := lab.SettledAmong(c, c.Nodes, Defaults.Settle)
	if err != nil {
		return Expert{Err: fmt.Errorf("expert by hand: %w", err)}
	}
	storeDir, err := storageDir(p)
	if err != nil {
		return Expert{Err: fmt.Errorf("expert by hand: %w", err)}
	}
	logf("bootstrap %s: the same steps by hand on snapshot %s (expert reference), replicating from %s", sizeName(size), rec.ID, p.Name)
	e := expertBootstrap(t, p, rec, storeDir, filepath.Dir(p.Dir))
	if e.Err == nil {
		logf("bootstrap %s: expert caught up after %s (extract %s, prepare %s with --use-memory=%dMiB, start %s, replicate %s over %s from GTID %s; decoding the snapshot beforehand, not counted: %s)",
			sizeName(size), e.Total.Round(time.Millisecond), e.Extract.Round(time.Millisecond), e.Prepare.Round(time.Millisecond), e.UseMemory>>20,
			e.Start.Round(time.Millisecond), e.Replicate.Round(time.Millisecond), e.TLS, e.GTID, e.Decode.Round(time.Millisecond))
	}
	return e
}

// load writes size bytes of random rows through the primary as the application user.
func load(p *harness.PilotNode, size int64) error {
	// Not p.DB(): its 2s read timeout is for probes, and one 64 MiB insert takes longer.
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(127.0.0.1:%d)/%s?timeout=5s&readTimeout=5m&writeTimeout=5m",
		harness.AppUser, harness.AppPassword, p.Port, harness.AppDatabase))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS big (id BIGINT AUTO_INCREMENT PRIMARY KEY, b VARBINARY(4096) NOT NULL) ENGINE=InnoDB`); err != nil {
		return fmt.Errorf("create big: %w", err)
	}
	row := "CONCAT(RANDOM_BYTES(1024), RANDOM_BYTES(1024), RANDOM_BYTES(1024), RANDOM_BYTES(1024))"
	for left := size / rowBytes; left > 0; left -= batchRows {
		n := min(left, batchRows)
		c, cancel := context.WithTimeout(ctx, 5*time.Minute)
		_, err := db.ExecContext(c, fmt.Sprintf(`INSERT INTO big (b) SELECT %s FROM seq_1_to_%d`, row, n))
		cancel()
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
	}
	return nil
}

// rawStream times `mariabackup --backup --stream=xbstream` of p's server to nowhere: the
// fastest a backup of this data set can leave the server, for comparison.
func rawStream(p *harness.PilotNode) (time.Duration, int64, error) {
	dir, err := os.MkdirTemp(p.Dir, "rawstream-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	opt := filepath.Join(dir, "client.cnf")
	if err := mysql.WriteClientOptionFile(opt, mysql.ClientOptions{User: "root", Password: harness.RootPassword, Socket: filepath.Join(p.Dir, "mysqld.sock")}); err != nil {
		return 0, 0, err
	}
	target := filepath.Join(dir, "target")
	cmd := exec.Command("mariabackup", mysql.MariaDB.BackupArgs(opt, target)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	n, _ := io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		s := stderr.String()
		if len(s) > 2000 {
			s = s[len(s)-2000:]
		}
		return 0, 0, fmt.Errorf("mariabackup: %v: %s", err, s)
	}
	return time.Since(start), n, nil
}

// du is the size of the files under dir.
func du(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
