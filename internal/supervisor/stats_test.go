package supervisor

import (
	"syscall"
	"testing"
)

func TestStatsSnapshotIsACopy(t *testing.T) {
	st := newStats()
	st.started()
	st.exited("mysqld", ExitStatus{Code: -1, Signal: syscall.SIGKILL})
	st.job("consul", func(j *JobStats) { j.Starts++; j.Restarts++ })

	snap := st.snapshot()
	snap.LastExit["mysqld"] = ExitStatus{}
	snap.Jobs["consul"] = JobStats{}

	again := st.snapshot()
	if got := again.LastExit["mysqld"].ExitCode(); got != 137 {
		t.Errorf("LastExit[mysqld] = %d after mutating a snapshot, want 137", got)
	}
	if got := again.Jobs["consul"]; got.Starts != 1 || got.Restarts != 1 {
		t.Errorf("Jobs[consul] = %+v after mutating a snapshot, want 1 start, 1 restart", got)
	}
	if again.Started != 1 || again.Exited != 1 {
		t.Errorf("Started, Exited = %d, %d, want 1, 1", again.Started, again.Exited)
	}
}
