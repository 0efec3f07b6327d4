//go:build !integration

// The integration build keeps one Supervisor alive for all its tests, so the tests that create
// their own live only in the plain build. None of them starts a child.

package supervisor

import (
	"errors"
	"testing"
)

func TestNewPanicsWhileAnotherSupervisorReaps(t *testing.T) {
	s := New(nil)
	defer s.Close()
	defer func() {
		if recover() == nil {
			t.Error("second New did not panic: two reapers would lose each other's exit statuses")
		}
	}()
	New(nil)
}

func TestStartAfterCloseFails(t *testing.T) {
	s := New(nil)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if _, err := s.Start(Cmd{Path: "true"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	New(nil).Close() // the guard is released by Close
}
