// Command supervise is a minimal `mysqlpilot supervise -- CMD ARGS` for the integration tests:
// it runs CMD under supervisor.Supervise and exits with its code, as the real CLI does.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

func main() {
	stopTimeout := flag.Duration("stop-timeout", 10*time.Second, "time between the stop signal and SIGKILL")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: supervise [-stop-timeout D] -- CMD [ARGS...]")
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	main := supervisor.Cmd{
		Path: flag.Arg(0), Args: flag.Args()[1:],
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	}
	os.Exit(supervisor.Supervise(context.Background(), log, main, supervisor.SuperviseOptions{StopTimeout: *stopTimeout}))
}
