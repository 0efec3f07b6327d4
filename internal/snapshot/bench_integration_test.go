//go:build integration

package snapshot_test

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// TestThroughputReport measures backup and restore throughput per backend and compression
// against the raw references on the same data (MYSQLPILOT_BENCH_MB, default 1024 MiB of InnoDB
// data): `mariabackup --stream` to /dev/null, and to an fsynced file on the same disk. Per row:
// MiB/s of the raw stream, CPU seconds per GiB (this process and the backup tool, which is its
// child), the compression ratio, the process's peak RSS and heap. It runs only with
// MYSQLPILOT_BENCH=1 (it takes minutes). MYSQLPILOT_BENCH_STORES (default local,s3,manta) and
// MYSQLPILOT_BENCH_COMPRESS (default zstd,lz4,none) choose the rows; MYSQLPILOT_BENCH_PPROF
// names a directory for a CPU profile of each backup (backup-<store>-<compress>.pprof).
// test/bench's pipeline scenario runs it and parses the lines that start with "row ".
func TestThroughputReport(t *testing.T) {
	if os.Getenv("MYSQLPILOT_BENCH") != "1" {
		t.Skip("set MYSQLPILOT_BENCH=1 to run the throughput report")
	}
	sizeMB := 1024
	if v, err := strconv.Atoi(os.Getenv("MYSQLPILOT_BENCH_MB")); err == nil && v > 0 {
		sizeMB = v
	}
	list := func(env, def string) []string { return strings.Split(cmp.Or(os.Getenv(env), def), ",") }
	profDir := os.Getenv("MYSQLPILOT_BENCH_PPROF")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	serverTmp := t.TempDir() // the server's own temporary tables: not in a /tmp others clean
	srv := harness.StartMariaDB(t, harness.MariaDBOptions{ServerID: 1, RootPassword: rootPW, ReadyTimeout: 5 * time.Minute,
		Config: func(c *mysql.ServerConfig) {
			c.InnoDBBufferPool = "256M"
			c.Extra = append(c.Extra, "innodb_log_file_size = 256M", "innodb_flush_log_at_trx_commit = 2", "sync_binlog = 0")
			c.TmpDir = serverTmp
		}})
	// Long statements (INSERT ... SELECT of a million rows) need more than the 30s I/O timeout.
	db, err := mysql.Open(ctx, mysql.Conn{Flavor: mysql.MariaDB, Socket: srv.Socket(), Password: rootPW, IOTimeout: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := &node{t: t, srv: srv, db: db}
	loadStart := time.Now()
	fill(t, ctx, p, int64(sizeMB)<<20)
	var dataBytes int64
	_ = filepath.Walk(filepath.Join(srv.Datadir(), "bench"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			dataBytes += fi.Size()
		}
		return nil
	})
	t.Logf("data set: %.0f MiB of InnoDB files in schema bench (loaded in %s)", float64(dataBytes)/(1<<20), time.Since(loadStart).Round(time.Second))

	rawStream(t, ctx, srv, "") // warm the page cache, so that no row pays for the first read
	cpu0 := cpuSeconds()
	rawBytes, rawDur := rawStream(t, ctx, srv, "")
	rawCPU := cpuPerGiB(cpuSeconds()-cpu0, rawBytes)
	rawRate := mbps(rawBytes, rawDur)
	t.Logf("raw mariabackup --stream=xbstream > /dev/null: %.0f MiB in %.1fs = %.1f MiB/s", float64(rawBytes)/(1<<20), rawDur.Seconds(), rawRate)
	cpu0 = cpuSeconds()
	fileBytes, fileDur := rawStream(t, ctx, srv, filepath.Join(t.TempDir(), "raw.xbstream"))
	fileCPU := cpuPerGiB(cpuSeconds()-cpu0, fileBytes)
	fileRate := mbps(fileBytes, fileDur)

	type result struct {
		backend                      string
		backupRate, restoreRate      float64
		cpu, ratio                   float64
		peakRSS, rssBefore, peakHeap uint64
		restoreTotal                 time.Duration
	}
	var results []result
	mk := map[string]func() storage.Store{
		"local": func() storage.Store { s, _ := localStore(t); return s },
		"s3":    func() storage.Store { s, _ := s3Store(t); return s },
		"manta": func() storage.Store { s, _ := mantaStore(t); return s },
	}
	for _, compress := range list("MYSQLPILOT_BENCH_COMPRESS", "zstd,lz4,none") {
		for _, name := range list("MYSQLPILOT_BENCH_STORES", "local,s3,manta") {
			if mk[name] == nil {
				t.Fatalf("MYSQLPILOT_BENCH_STORES: unknown store %q (local, s3, manta)", name)
			}
			store := mk[name]()
			resetPeakRSS()
			before := rssKB("VmRSS")
			var peakHeap atomic.Uint64
			stopSampling := sampleHeap(&peakHeap)
			o := backupOpts(t, p, store)
			o.Compress = compress
			o.Log = nil // progress lines would dominate the test log
			stopProfile := cpuProfile(t, profDir, "backup-"+name+"-"+compress)
			cpu0 := cpuSeconds()
			start := time.Now()
			rec, err := snapshot.Backup(ctx, o)
			d := time.Since(start)
			cpu := cpuSeconds() - cpu0
			stopProfile()
			stopSampling()
			if err != nil {
				t.Fatalf("%s/%s: %v", name, compress, err)
			}
			r := result{backend: name + "/" + compress, backupRate: mbps(rec.RawSize, d), cpu: cpuPerGiB(cpu, rec.RawSize),
				ratio: float64(rec.RawSize) / float64(rec.Size), peakRSS: rssKB("VmHWM"), rssBefore: before, peakHeap: peakHeap.Load()}

			datadir := filepath.Join(t.TempDir(), "restored")
			rstart := time.Now()
			rr, err := snapshot.Restore(ctx, snapshot.RestoreOptions{Runner: supervisor.ExecRunner{}, Flavor: mysql.MariaDB, Store: store,
				Record: rec, Datadir: datadir, TempDir: filepath.Join(filepath.Dir(datadir), "tmp")})
			r.restoreTotal = time.Since(rstart)
			if err != nil || rr.GTID != rec.GTID {
				t.Fatalf("%s restore: %v", r.backend, err)
			}
			r.restoreRate = mbps(rec.RawSize, r.restoreTotal)
			results = append(results, r)
			_ = os.RemoveAll(datadir)
			_ = store.Delete(ctx, rec.Path) // free the disk for the next row
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\ndata set: %.0f MiB of InnoDB files, %.0f MiB backup stream\n", float64(dataBytes)/(1<<20), float64(rawBytes)/(1<<20))
	fmt.Fprintf(&b, "%-36s %12s %10s %8s %8s %14s %7s %12s %10s %10s\n", "row", "backup MB/s", "CPU s/GiB", "vs raw", "vs file", "restore MB/s", "ratio", "peak RSS", "RSS before", "peak heap")
	fmt.Fprintf(&b, "%-36s %12.1f %10.2f %8.2f %8.2f %14s %7s\n", "row raw-stream-to-/dev/null", rawRate, rawCPU, 1.0, rawRate/fileRate, "-", "-")
	fmt.Fprintf(&b, "%-36s %12.1f %10.2f %8.2f %8.2f %14s %7s\n", "row raw-stream-to-fsynced-file", fileRate, fileCPU, fileRate/rawRate, 1.0, "-", "-")
	for _, r := range results {
		fmt.Fprintf(&b, "%-36s %12.1f %10.2f %8.2f %8.2f %14.1f %7.2f %9d MiB %7d MiB %7d MiB\n", "row "+r.backend, r.backupRate, r.cpu, r.backupRate/rawRate, r.backupRate/fileRate,
			r.restoreRate, r.ratio, r.peakRSS>>10, r.rssBefore>>10, r.peakHeap>>20)
	}
	t.Log(b.String())
}

// cpuSeconds is the CPU time of this process and of its waited-for children (the backup tool).
func cpuSeconds() float64 {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(v syscall.Timeval) float64 { return float64(v.Sec) + float64(v.Usec)/1e6 }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

func cpuPerGiB(sec float64, n int64) float64 { return sec / (float64(n) / (1 << 30)) }

// cpuProfile writes a CPU profile to dir/name.pprof until the returned stop is called; with
// dir empty it does nothing.
func cpuProfile(t *testing.T, dir, name string) (stop func()) {
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(name, "/", "-")+".pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// fill loads about size bytes of rows into bench.t: random strings doubled with INSERT ...
// SELECT, compressible about as much as typical application data.
func fill(t *testing.T, ctx context.Context, p *node, size int64) {
	t.Helper()
	exec := func(q string) {
		t.Helper()
		if _, err := p.db.SQL().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE DATABASE bench")
	exec("CREATE TABLE bench.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, a CHAR(64), b VARCHAR(255), c DOUBLE, d DATETIME) ENGINE=InnoDB")
	exec("INSERT INTO bench.t (a, b, c, d) VALUES (MD5(RAND()), REPEAT(MD5(RAND()), 4), RAND(), NOW())")
	for {
		var n int64
		if err := p.db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM bench.t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n*340 >= size {
			return
		}
		limit := min(n, (size-n*340)/340+1)
		exec(fmt.Sprintf("INSERT INTO bench.t (a, b, c, d) SELECT MD5(RAND()), CONCAT(MD5(RAND()), MD5(id), SHA1(RAND()), SHA2(RAND(), 256)), RAND(), NOW() FROM bench.t LIMIT %d", limit))
	}
}

// rawStream runs the backup tool to /dev/null (through a counter), or to the file path
// (fsynced), and times it.
func rawStream(t *testing.T, ctx context.Context, srv *harness.MariaDB, path string) (int64, time.Duration) {
	t.Helper()
	dir := t.TempDir()
	opt := filepath.Join(dir, "client.cnf")
	if err := mysql.WriteClientOptionFile(opt, mysql.ClientOptions{User: "root", Password: rootPW, Socket: srv.Socket()}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "mariabackup", mysql.MariaDB.BackupArgs(opt, filepath.Join(dir, "target"))...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var w io.Writer = io.Discard
	var f *os.File
	if path != "" {
		if f, err = os.Create(path); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		w = f
	}
	n, _ := io.Copy(w, out)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if f != nil {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return n, time.Since(start)
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }

// resetPeakRSS resets VmHWM (writing 5 to clear_refs).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// rssKB reads a field of /proc/self/status in KiB.
func rssKB(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func sampleHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}
