package snapshot

import (
	"os"
	"strings"
	"testing"
)

func TestPrepareMemory(t *testing.T) {
	const mib, gib = 1 << 20, 1 << 30
	cases := []struct {
		name          string
		limit         int64
		serverStopped bool
		want          int64
	}{
		{"2 GiB container, server stopped: half", 2 * gib, true, gib},
		{"2 GiB container, server running: an eighth", 2 * gib, false, 256 * mib},
		{"tiny container, server stopped: the tool's default", 128 * mib, true, 100 * mib},
		{"tiny container, server running: the tool's default", 512 * mib, false, 100 * mib},
		{"large machine, server stopped: capped", 64 * gib, true, 4 * gib},
		{"large machine, server running: capped", 64 * gib, false, 4 * gib},
		{"no limit known", 0, true, 100 * mib},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := PrepareMemory(c.limit, c.serverStopped); got != c.want {
				t.Errorf("PrepareMemory(%d MiB, %v) = %d MiB, want %d MiB", c.limit/mib, c.serverStopped, got/mib, c.want/mib)
			}
		})
	}
}

func TestMemoryLimit(t *testing.T) {
	const meminfo = "MemTotal:       24683748 kB\nMemFree:        22000000 kB\n"
	const total = 24683748 << 10
	cases := []struct {
		name       string
		files      map[string]string
		want       int64
		wantSource string
		wantErr    string
	}{
		{"cgroup v2 limit", map[string]string{cgroupV2Max: "2147483648\n"}, 2 << 30, cgroupV2Max, ""},
		{"cgroup v2 without limit", map[string]string{cgroupV2Max: "max\n"}, total, "MemTotal", ""},
		{"cgroup v1 limit", map[string]string{cgroupV1Limit: "1073741824\n"}, 1 << 30, cgroupV1Limit, ""},
		{"cgroup v1 without limit", map[string]string{cgroupV1Limit: "9223372036854771712\n"}, total, "MemTotal", ""},
		{"no cgroup files", nil, total, "MemTotal", ""},
		{"limit above the machine's memory", map[string]string{cgroupV2Max: "107374182400"}, total, "MemTotal", ""},
		{"garbage", map[string]string{cgroupV2Max: "lots"}, 0, "", `memory.max holds "lots", not a number of bytes`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{procMeminfo: meminfo}
			for k, v := range c.files {
				files[k] = v
			}
			read := func(p string) ([]byte, error) {
				if v, ok := files[p]; ok {
					return []byte(v), nil
				}
				return nil, os.ErrNotExist
			}
			got, source, err := memoryLimit(read)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want || !strings.Contains(source, c.wantSource) {
				t.Errorf("memoryLimit = %d, %q, %v; want %d from %s", got, source, err, c.want, c.wantSource)
			}
		})
	}
}
