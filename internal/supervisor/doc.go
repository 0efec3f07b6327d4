// Package supervisor starts, reaps, signals and stops the child processes of mysqlpilot, which
// runs as PID 1 of its container.
//
// One reaper goroutine per process owns wait4(-1, WNOHANG): it hands each child's exit status to
// the Process that started it and reaps orphans (descendants reparented to us, as PID 1 or as a
// child subreaper). Nothing else may wait for a child, so while a Supervisor exists:
//
//  1. start every child through it (Start, Run, RunJob, Supervise), never with os/exec, whose
//     Wait would race the reaper and lose the exit status (ContainerPilot's bug);
//  2. create only one Supervisor per process (New panics otherwise) and Close it only after its
//     children are done;
//  3. take signals through Signals, which turns them into typed values on a channel; SIGCHLD is
//     the reaper's and is never forwarded.
//
// Children run in their own process group; Signal, Stop and the stop sequence of Supervise
// address the whole group. Exit codes follow the shell: the child's code, or 128+signal, and 127
// or 126 when the executable is missing or cannot be executed.
package supervisor
