package supervisor

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSignalsDeliversTypedValuesInOrder signals this test process itself: no child involved.
func TestSignalsDeliversTypedValuesInOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	sigs := Signals(ctx)
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP} {
		if err := syscall.Kill(os.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, sigs); got != sig {
			t.Fatalf("received %v, want %v", got, sig)
		}
	}
	cancel()
	for range sigs { // drains, then must close
	}
}

func TestSignalsNeverIncludesSIGCHLD(t *testing.T) {
	for _, sig := range notified() {
		if sig == syscall.SIGCHLD {
			t.Fatal("SIGCHLD is among the forwarded signals")
		}
	}
}

func receive(t *testing.T, sigs <-chan syscall.Signal) syscall.Signal {
	t.Helper()
	select {
	case sig := <-sigs:
		return sig
	case <-time.After(10 * time.Second):
		t.Fatal("no signal delivered")
		return 0
	}
}
