package snapshot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Bounds of the prepare step's --use-memory (its buffer pool, where the redo log is applied).
//
// With the server stopped (a replica's bootstrap or re-seed) the container's memory is the
// server's and the server is not running, so the prepare takes half of the limit. The other
// half covers what the backup tool allocates beside its buffer pool, mysqlpilot and the Consul
// agent (tens of MiB each), and the page cache the unpacked files pass through, which the
// cgroup charges too. Otherwise (a restore drill beside a running server, whose buffer pool is
// commonly half to three quarters of the limit; a standalone point-in-time restore, which
// cannot know) it takes an eighth: the caller must say the server is stopped to get more.
//
// Never below the tool's own default of 100 MiB; never above 4 GiB: the pool only has to hold
// the pages the backup's redo log touches, and a 4 GiB pool (262 144 pages of 16 KiB) holds
// those of far more redo than a backup of minutes writes, so more buys nothing.
const (
	minPrepareMemory = 100 << 20
	maxPrepareMemory = 4 << 30
)

// PrepareMemory is the --use-memory for the prepare step in a container whose memory limit
// is limit bytes; serverStopped when no server shares that memory (see the bounds above).
func PrepareMemory(limit int64, serverStopped bool) int64 {
	share := limit / 8
	if serverStopped {
		share = limit / 2
	}
	return min(max(share, minPrepareMemory), maxPrepareMemory)
}

// Where the container's memory limit is read: cgroup v2, cgroup v1, then the machine's
// memory when neither sets one.
const (
	cgroupV2Max   = "/sys/fs/cgroup/memory.max"
	cgroupV1Limit = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	procMeminfo   = "/proc/meminfo"
)

// MemoryLimit returns the memory this container may use, in bytes, and where that came from:
// the cgroup's limit, or the machine's memory when there is none (or it is larger).
func MemoryLimit() (int64, string, error) { return memoryLimit(os.ReadFile) }

func memoryLimit(readFile func(string) ([]byte, error)) (int64, string, error) {
	total, err := memTotal(readFile)
	if err != nil {
		return 0, "", err
	}
	for _, path := range []string{cgroupV2Max, cgroupV1Limit} {
		b, err := readFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, "", fmt.Errorf("read the container's memory limit: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "max" { // cgroup v2: no limit
			break
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, "", fmt.Errorf("read the container's memory limit: %s holds %q, not a number of bytes", path, s)
		}
		// cgroup v1 says "no limit" with a number near 2^63 (rounded to the page size).
		if n > 0 && n < total {
			return n, path, nil
		}
		break
	}
	return total, procMeminfo + " MemTotal (no container limit)", nil
}

// memTotal reads MemTotal from /proc/meminfo, in bytes.
func memTotal(readFile func(string) ([]byte, error)) (int64, error) {
	b, err := readFile(procMeminfo)
	if err != nil {
		return 0, fmt.Errorf("read the machine's memory: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil || kb <= 0 {
				return 0, fmt.Errorf("read the machine's memory: %s: MemTotal %q", procMeminfo, strings.TrimSpace(v))
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("read the machine's memory: no MemTotal in %s", procMeminfo)
}
