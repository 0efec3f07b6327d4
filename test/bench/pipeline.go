package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// PipeRow is one stage combination of the backup pipeline after the tool (compress, seal,
// sha256), in MB/s of the raw stream, from internal/snapshot's BenchmarkPipeline.
type PipeRow struct {
	Name string  // "zstd", "zstd+sealed", "none", "none+sealed"
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
	if len(rows) != 4 {
		return rows, fmt.Errorf("BenchmarkPipeline printed %d rows, want 4:\n%s", len(rows), out)
	}
	return rows, nil
}

// pipelineMarkdown renders the rows, each sealed row beside its unsealed reference.
func pipelineMarkdown(rows []PipeRow) string {
	var b strings.Builder
	b.WriteString("## Snapshot pipeline: the cost of sealing (snapshot.encrypt)\n\n")
	b.WriteString("In-process, after the backup tool: compress (zstd fastest, 2 goroutines) or not, seal (AES-256-GCM, 64 KiB chunks) or not, sha256 of what is stored, on 64 MiB of InnoDB-like pages (hex rows, free space) per round, 10 rounds. MB/s (wall clock) and CPU seconds per GiB (all goroutines) of the raw stream; the backup tool itself (mariabackup) is not in these figures. CPU per GiB is the steadier figure when the machine is loaded.\n\n")
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
