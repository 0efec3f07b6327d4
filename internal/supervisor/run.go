package supervisor

import (
	"context"
	"fmt"
	"syscall"
)

// Run starts c and waits for it; it implements Runner. A non-zero exit returns an *ExitError
// carrying the tail of stderr when c.Stderr is nil; a failure to start returns a *StartError.
// Cancelling ctx sends SIGTERM to the command's process group and SIGKILL after a grace period;
// the error then wraps both ctx's error and the *ExitError.
func (s *Supervisor) Run(ctx context.Context, c Cmd) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("supervisor: run %s: %w", c.name(), err)
	}
	var tail *tailBuffer
	if c.Stderr == nil {
		tail = &tailBuffer{}
		c.Stderr = tail
	}
	p, err := s.Start(c)
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
		return p.result(tail, nil)
	case <-ctx.Done():
		p.Stop(context.Background(), syscall.SIGTERM, gracePeriod)
		return p.result(tail, context.Cause(ctx))
	}
}

// result turns a finished process into Run's error: nil on exit 0 with its output intact.
// cause, when not nil, is why the process was stopped.
func (p *Process) result(tail *tailBuffer, cause error) error {
	<-p.done
	ioErr := p.IOError()
	st := p.status
	if st.Success() {
		return ioErr
	}
	ee := &ExitError{Name: p.name, Status: st}
	if tail != nil {
		ee.Stderr = tail.String()
	}
	switch {
	case cause != nil:
		return fmt.Errorf("supervisor: %s stopped: %w: %w", p.name, cause, ee)
	case ioErr != nil:
		return fmt.Errorf("%w (%w)", ioErr, ee)
	default:
		return ee
	}
}
