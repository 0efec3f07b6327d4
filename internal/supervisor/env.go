package supervisor

import (
	"os"
	"strings"
)

// SetEnviron sets the environment of every child started with a nil Cmd.Env (by default the
// supervisor's own). PID 1 sets it once, before any child starts, to ScrubEnv's result: no
// child (mysqld, a tool, a job) inherits a password, key or token it was not given by name.
func (s *Supervisor) SetEnviron(env []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.environ = append([]string(nil), env...)
}

func (s *Supervisor) childEnv(c Cmd) []string {
	if c.Env != nil {
		return c.Env
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.environ != nil {
		return s.environ
	}
	return os.Environ()
}

// ScrubEnv returns environ without the variables that carry a secret: any whose value holds
// one of secrets (the configured passwords, keys and tokens), and any whose name says it is
// one (…PASSWORD…, …SECRET…, …TOKEN…, …PRIVATE_KEY…, …KEY at the end, MYSQL_PWD), whatever
// the config uses: a secret the config does not reference is kept from children too.
func ScrubEnv(environ, secrets []string) []string {
	out := make([]string, 0, len(environ))
next:
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if secretName(name) {
			continue
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(value, s) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

func secretName(name string) bool {
	n := strings.ToUpper(name)
	for _, w := range []string{"PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY", "MYSQL_PWD"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return strings.HasSuffix(n, "KEY") // SNAPSHOT_KEY, S3_ACCESS_KEY, any API_KEY
}

// Pass returns the named variables of environ (for a job's config `env`: what it is given
// on purpose).
func Pass(environ, names []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		for _, n := range names {
			if n == name {
				out = append(out, kv)
			}
		}
	}
	return out
}
