package supervisor

import (
	"maps"
	"sync"
)

// Stats are the Supervisor's counters, for the lead to publish as metrics. Counters only grow.
type Stats struct {
	Started       uint64                // children started
	StartFailures uint64                // starts that failed before the child ran (not found, not executable, ...)
	Exited        uint64                // children started here and reaped
	OrphansReaped uint64                // reparented descendants reaped
	Running       int                   // children started and not yet reaped
	LastExit      map[string]ExitStatus // last exit of each command, by Cmd name
	Jobs          map[string]JobStats   // by job name
}

// JobStats are one job's counters.
type JobStats struct {
	Starts   uint64     // times the job's command was started
	Restarts uint64     // restarts decided by the job's policy
	Running  bool       // whether the job's command is running now
	LastExit ExitStatus // how its last run ended
}

// stats is the mutable side of Stats. Its mutex guards only counters; nothing blocks under it.
type stats struct {
	mu sync.Mutex
	s  Stats
}

func newStats() stats {
	return stats{s: Stats{LastExit: map[string]ExitStatus{}, Jobs: map[string]JobStats{}}}
}

func (st *stats) update(f func(s *Stats)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f(&st.s)
}

func (st *stats) started()      { st.update(func(s *Stats) { s.Started++ }) }
func (st *stats) startFailed()  { st.update(func(s *Stats) { s.StartFailures++ }) }
func (st *stats) orphanReaped() { st.update(func(s *Stats) { s.OrphansReaped++ }) }

func (st *stats) exited(name string, status ExitStatus) {
	st.update(func(s *Stats) {
		s.Exited++
		s.LastExit[name] = status
	})
}

func (st *stats) job(name string, f func(j *JobStats)) {
	st.update(func(s *Stats) {
		j := s.Jobs[name]
		f(&j)
		s.Jobs[name] = j
	})
}

func (st *stats) snapshot() Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := st.s
	out.LastExit = maps.Clone(st.s.LastExit)
	out.Jobs = maps.Clone(st.s.Jobs)
	return out
}
