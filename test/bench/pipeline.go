package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// PipeRow is one stage combination of the backup pipeline after the tool (compress, seal,
// sha256), in MB/s of the raw stream, from internal/snapshot's BenchmarkPipeline.
type PipeRow struct {
	Name string  // "zstd", "zstd+sealed", "lz4", "lz4+sealed", "none", "none+sealed"
	MBps float64 // wall clock
	CPU  float64 // CPU seconds per GiB, all goroutines
}

var pipeLine = regexp.MustCompile(`^BenchmarkPipeline/(\S+?)(-\d+)?\s+\d+\s+\d+ ns/op\s+([\d.]+) MB/s\s+([\d.]+) cpu-s/GiB`)

// Pipeline runs BenchmarkPipeline (in-process, 64 MiB of InnoDB-like pages per round) and
// returns its rows: what sealing costs beside compression and hashing.
func Pipeline() ([]PipeRow, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkPipeline$", "-benchtime", "10x", "./internal/snapshot/")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go test -bench BenchmarkPipeline: %v: %s", err, out)
	}
	var rows []PipeRow
	for _, l := range strings.Split(string(out), "\n") {
		if m := pipeLine.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseFloat(m[3], 64)
			c, _ := strconv.ParseFloat(m[4], 64)
			rows = append(rows, PipeRow{Name: m[1], MBps: v, CPU: c})
		}
	}
	if len(rows) != 6 {
		return rows, fmt.Errorf("BenchmarkPipeline printed %d rows, want 6:\n%s", len(rows), out)
	}
	return rows, nil
}

// pipelineMarkdown renders the rows, each sealed row beside its unsealed reference.
func pipelineMarkdown(rows []PipeRow) string {
	var b strings.Builder
	b.WriteString("## Snapshot pipeline: the cost of sealing (snapshot.encrypt)\n\n")
	b.WriteString("In-process, after the backup tool: compress (zstd fastest in independent 1 MiB frames on 2 goroutines, or lz4 fast on 2 goroutines) or not, seal (AES-256-GCM, 64 KiB chunks) or not, sha256 of what is stored, on 64 MiB of InnoDB-like pages (hex rows, free space) per round written in 32 KiB pieces, 10 rounds. MB/s (wall clock) and CPU seconds per GiB (all goroutines) of the raw stream; the backup tool itself (mariabackup) is not in these figures. CPU per GiB is the steadier figure when the machine is loaded.\n\n")
	b.WriteString("| stages | MB/s | CPU s/GiB | reference (same, unsealed): MB/s, CPU s/GiB | sealed / reference, MB/s | extra CPU for sealing |\n|---|---|---|---|---|---|\n")
	by := map[string]PipeRow{}
	for _, r := range rows {
		by[r.Name] = r
	}
	for _, r := range rows {
		name, ok := strings.CutSuffix(r.Name, "+sealed")
		if !ok {
			continue
		}
		ref := by[name]
		fmt.Fprintf(&b, "| %s + sha256 | %.0f | %.2f | %s + sha256: %.0f, %.2f | %.2f | %+.0f%% |\n", r.Name, r.MBps, r.CPU, name, ref.MBps, ref.CPU,
			r.MBps/ref.MBps, 100*(r.CPU-ref.CPU)/ref.CPU)
	}
	b.WriteString("\n")
	return b.String()
}

// Throughput is one run of internal/snapshot's TestThroughputReport on the local store: real
// mariabackup on a data set of Size bytes, the raw references and a backup per compression,
// side by side.
type Throughput struct {
	Size    int64
	DataSet string // the test's own line: InnoDB files and stream size
	Rows    []ThroughputRow
	Profile string // directory of the CPU profiles, one per backup
}

// ThroughputRow is one line of the report.
type ThroughputRow struct {
	Name                    string // "raw-stream-to-/dev/null", "raw-stream-to-fsynced-file", "local/zstd", ...
	MBps, CPU               float64
	VsRaw, VsFile           float64
	Restore, Ratio          string // "-" for the raw rows
	PeakRSS, RSS0, PeakHeap string
}

var throughputLine = regexp.MustCompile(`^\s*row (\S+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)\s+(\S+)(?:\s+(\d+ MiB)\s+(\d+ MiB)\s+(\d+ MiB))?`)

// RunThroughput runs TestThroughputReport with the local store and every compression on a
// data set of size bytes, writing CPU profiles to profDir (created; "" for none).
func RunThroughput(size int64, profDir string) (Throughput, error) {
	t := Throughput{Size: size, Profile: profDir}
	env := append(os.Environ(), "MYSQLPILOT_BENCH=1", fmt.Sprintf("MYSQLPILOT_BENCH_MB=%d", size>>20),
		"MYSQLPILOT_BENCH_STORES=local", "MYSQLPILOT_BENCH_COMPRESS=zstd,lz4,none")
	if profDir != "" {
		abs, err := filepath.Abs(profDir)
		if err != nil {
			return t, err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return t, err
		}
		env = append(env, "MYSQLPILOT_BENCH_PPROF="+abs)
	}
	logf("throughput: %s data set, real mariabackup, local store, zstd / lz4 / none", sizeName(size))
	cmd := exec.Command("go", "test", "-tags", "integration", "-run", "^TestThroughputReport$", "-count=1", "-v", "-timeout", "60m", "./internal/snapshot/")
	cmd.Env = env
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return t, fmt.Errorf("go test -run TestThroughputReport: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if d, ok := strings.CutPrefix(strings.TrimSpace(l), "data set: "); ok && strings.Contains(d, "backup stream") {
			t.DataSet = d
		}
		m := throughputLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		f := func(i int) float64 { v, _ := strconv.ParseFloat(m[i], 64); return v }
		t.Rows = append(t.Rows, ThroughputRow{Name: m[1], MBps: f(2), CPU: f(3), VsRaw: f(4), VsFile: f(5), Restore: m[6], Ratio: m[7],
			PeakRSS: m[8], RSS0: m[9], PeakHeap: m[10]})
	}
	if len(t.Rows) != 5 {
		return t, fmt.Errorf("TestThroughputReport printed %d rows, want 5:\n%s", len(t.Rows), out)
	}
	return t, nil
}

// throughputMarkdown renders the run, each row against the raw references.
func throughputMarkdown(t Throughput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Snapshot throughput: backup beside raw `mariabackup --stream` (%s data set)\n\n", sizeName(t.Size))
	fmt.Fprintf(&b, "internal/snapshot's TestThroughputReport: one MariaDB server, a table of random hex text (MD5/SHA rows, about as compressible as application data), %s; the raw stream is read once to warm the page cache, then timed to /dev/null and to an fsynced file; then `snapshot.Backup` to the local store (same disk) with each compression, and a restore (download, sha256, decompress, `mbstream -x`, `--prepare`, rename) of each. MB/s of the raw stream; CPU s/GiB is this process and the backup tool (its child). Targets (issue 13): default compression ≥ 0.8 × raw to /dev/null; none ≥ 0.95 × raw to an fsynced file.\n\n", t.DataSet)
	b.WriteString("| row | MB/s | CPU s/GiB | × raw to /dev/null | × raw to fsynced file | ratio | restore MB/s | peak RSS |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.2f | %.2f | %s | %s | %s |\n", r.Name, r.MBps, r.CPU, r.VsRaw, r.VsFile, r.Ratio, r.Restore, cmpOr(r.PeakRSS, "-"))
	}
	if t.Profile != "" {
		fmt.Fprintf(&b, "\nCPU profiles of each backup: `%s/backup-local-<compress>.pprof` (`go tool pprof -top`).\n", t.Profile)
	}
	b.WriteString("\n")
	return b.String()
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
