package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// Machine describes the host the figures come from.
type Machine struct {
	CPUs     int
	MemTotal string
	Kernel   string
	Go       string
	MariaDB  string
	Consul   string
	CPUModel string
}

// Describe reads the machine's facts.
func DescribeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if out, err := exec.Command("mariadbd", "--version").Output(); err == nil {
		m.MariaDB = strings.Join(strings.Fields(string(out)), " ")
	}
	consul := filepath.Join(harness.ToolsDir(), "consul")
	if out, err := exec.Command(consul, "version").Output(); err == nil {
		m.Consul = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return m
}

// LoadAvg is the 1-minute load average now.
func LoadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

// LoadSampler samples the 1-minute load average every 15s until stopped.
type LoadSampler struct {
	mu      sync.Mutex
	samples []float64
	stop    chan struct{}
	done    chan struct{}
}

// StartLoadSampler starts sampling.
func StartLoadSampler() *LoadSampler {
	s := &LoadSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			s.mu.Lock()
			s.samples = append(s.samples, LoadAvg())
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Summary is "min / median / max (n samples)".
func (s *LoadSampler) Summary() string {
	s.mu.Lock()
	x := append([]float64(nil), s.samples...)
	s.mu.Unlock()
	if len(x) == 0 {
		return "n/a"
	}
	sort.Float64s(x)
	return fmt.Sprintf("min %.2f / median %.2f / max %.2f (1-min load average, %d samples every 15s)", x[0], x[len(x)/2], x[len(x)-1], len(x))
}

// Stop ends the sampling.
func (s *LoadSampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// ProcMem is VmRSS and VmHWM of pid in KiB.
func ProcMem(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rss, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			hwm, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return rss, hwm, nil
}

// ClockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat (100 on Linux).
const ClockTick = 100

// ProcCPU is utime+stime of pid (its own threads, not its children) as a duration.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	// Fields after the command: state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / ClockTick, nil
}
