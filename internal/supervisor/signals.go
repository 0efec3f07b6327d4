package supervisor

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// notified are the signals Signals delivers. SIGCHLD is the reaper's and is never among them.
func notified() []os.Signal {
	return []os.Signal{
		syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT,
	}
}

// Signals subscribes to SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT and delivers them,
// typed, on the returned channel, in order, until ctx is done; then it unsubscribes and closes
// the channel. Subscribe before starting the children, so no early signal takes its default
// action. The goroutine behind it only converts and forwards: the owner decides what a signal
// means. A burst larger than the buffers may be coalesced, as the kernel itself does.
func Signals(ctx context.Context) <-chan syscall.Signal {
	in := make(chan os.Signal, 16)
	out := make(chan syscall.Signal, 16)
	signal.Notify(in, notified()...)
	go func() {
		defer close(out)
		defer signal.Stop(in)
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-in:
				select {
				case out <- sig.(syscall.Signal):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
