package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mysqlpilot/mysqlpilot/test/bench/lab"
)

// Footprint is a process's memory and its CPU use over an idle window.
type Footprint struct {
	What     string
	Pid      int
	RSS, HWM int64 // KiB, at the end of the window
	CPU      time.Duration
	Window   time.Duration
	Err      error
}

// Percent is the CPU use as a percentage of one core.
func (f Footprint) Percent() float64 {
	if f.Window == 0 {
		return 0
	}
	return 100 * f.CPU.Seconds() / f.Window.Seconds()
}

// StartSupervise runs `mysqlpilot supervise -- sleep 1000` and returns once sleep runs under it.
func StartSupervise(bin string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, "supervise", "--", "sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	err := lab.Until(10*time.Second, func() bool {
		// Any of the Go process's threads may have forked the child.
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) != "" {
				return true
			}
		}
		return false
	})
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("supervise: sleep did not start: %w", err)
	}
	return cmd, nil
}

// Idle measures every process in procs over the same window.
func Idle(procs []Footprint, window time.Duration) []Footprint {
	var wg sync.WaitGroup
	out := make([]Footprint, len(procs))
	for i, p := range procs {
		wg.Add(1)
		go func(i int, p Footprint) {
			defer wg.Done()
			p.Window = window
			c0, err := lab.ProcCPU(p.Pid)
			if err != nil {
				p.Err = err
				out[i] = p
				return
			}
			time.Sleep(window) // the measurement window itself
			c1, err := lab.ProcCPU(p.Pid)
			if err != nil {
				p.Err = err
				out[i] = p
				return
			}
			p.CPU = c1 - c0
			p.RSS, p.HWM, p.Err = lab.ProcMem(p.Pid)
			out[i] = p
		}(i, p)
	}
	wg.Wait()
	return out
}
