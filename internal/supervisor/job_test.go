package supervisor

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRestartPolicy(t *testing.T) {
	failed := errors.New("exit status 1")
	tests := []struct {
		name   string
		policy RestartPolicy
		err    error
		want   bool
	}{
		{"never restarts after success", RestartNever, nil, false},
		{"never restarts after failure", RestartNever, failed, false},
		{"empty policy means never", "", failed, false},
		{"on-failure stops after success", RestartOnFailure, nil, false},
		{"on-failure restarts after failure", RestartOnFailure, failed, true},
		{"always restarts after success", RestartAlways, nil, true},
		{"always restarts after failure", RestartAlways, failed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.restarts(tt.err); got != tt.want {
				t.Errorf("%q.restarts(%v) = %v, want %v", tt.policy, tt.err, got, tt.want)
			}
		})
	}
}

func TestRestartPolicyValidate(t *testing.T) {
	for _, p := range []RestartPolicy{"", RestartNever, RestartOnFailure, RestartAlways} {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", p, err)
		}
	}
	if err := RestartPolicy("sometimes").Validate(); err == nil || !strings.Contains(err.Error(), `"sometimes"`) {
		t.Errorf("Validate(sometimes) = %v, want an error naming it", err)
	}
}

func TestBackoff(t *testing.T) {
	const base, limit = 100 * time.Millisecond, time.Second
	quick := 10 * time.Millisecond // a run that failed at once
	tests := []struct {
		name  string
		runs  []time.Duration // how long each run lasted
		delay []time.Duration // the delay chosen after it
	}{
		{"first restart waits the base delay", []time.Duration{quick}, []time.Duration{base}},
		{"quick failures double the delay up to the cap",
			[]time.Duration{quick, quick, quick, quick, quick, quick},
			[]time.Duration{base, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, limit, limit}},
		{"a stable run resets the delay",
			[]time.Duration{quick, quick, quick, limit, quick},
			[]time.Duration{base, 200 * time.Millisecond, 400 * time.Millisecond, base, 200 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := backoff{base: base, max: limit}
			for i, ran := range tt.runs {
				if got := b.next(ran); got != tt.delay[i] {
					t.Errorf("restart %d after a %v run: delay %v, want %v", i+1, ran, got, tt.delay[i])
				}
			}
		})
	}
}

func TestJobDefaults(t *testing.T) {
	j, err := Job{Cmd: Cmd{Path: "/usr/bin/consul"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := Job{
		Name: "consul", Cmd: Cmd{Path: "/usr/bin/consul"}, Restart: RestartNever,
		RestartDelay: DefaultRestartDelay, MaxRestartDelay: DefaultMaxRestartDelay,
		StopSignal: syscall.SIGTERM, StopTimeout: DefaultStopTimeout,
	}
	if j.Name != want.Name || j.Restart != want.Restart || j.RestartDelay != want.RestartDelay ||
		j.MaxRestartDelay != want.MaxRestartDelay || j.StopSignal != want.StopSignal || j.StopTimeout != want.StopTimeout {
		t.Errorf("withDefaults() = %+v, want %+v", j, want)
	}

	j, _ = Job{Cmd: Cmd{Path: "x"}, RestartDelay: 5 * time.Minute}.withDefaults()
	if j.MaxRestartDelay != 5*time.Minute {
		t.Errorf("MaxRestartDelay = %v, want raised to RestartDelay", j.MaxRestartDelay)
	}

	if _, err := (Job{Name: "agent", Restart: "sometimes"}).withDefaults(); err == nil ||
		!strings.Contains(err.Error(), "supervisor: job agent:") {
		t.Errorf("withDefaults(bad policy) = %v, want an error naming the job", err)
	}
}
