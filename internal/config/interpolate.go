package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// LookupEnv is how the config reads the environment; os.LookupEnv in production, a map in tests.
type LookupEnv func(name string) (string, bool)

// interpolate expands ${VAR} and ${VAR:-default} in s. "$$" is a literal "$". A ${VAR} whose
// variable is unset expands to "" (required values are caught by validation, which names the
// field); ${VAR:-default} uses default when VAR is unset or empty, as in a POSIX shell.
func interpolate(s string, env LookupEnv) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ at offset %d (write $$ for a literal $)", i)
		}
		expr := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("bad variable name %q in ${%s} (use ${NAME} or ${NAME:-default})", name, expr)
		}
		v, ok, err := lookup(env, name)
		if err != nil {
			return "", err
		}
		if hasDef && (!ok || v == "") {
			v = def
		}
		b.WriteString(v)
		i += 2 + end
	}
	return b.String(), nil
}

// fileRefError is an error about a NAME_FILE variable: it names a file, never a secret, so a
// secret field's error may show it.
type fileRefError struct{ msg string }

func (e *fileRefError) Error() string { return e.msg }

// lookup reads the variable name, or, when NAME_FILE is set, the file it names (a Docker or
// Kubernetes secret such as /run/secrets/mysql_root_password), without its trailing newline:
// secrets passed as files never show in `docker inspect` or in /proc/<pid>/environ.
func lookup(env LookupEnv, name string) (string, bool, error) {
	v, ok := env(name)
	path, fok := env(name + "_FILE")
	if !fok || path == "" {
		return v, ok, nil
	}
	if ok && v != "" {
		return "", false, &fileRefError{fmt.Sprintf("both %s and %s_FILE are set: keep one", name, name)}
	}
	b, err := readSmallFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", false, &fileRefError{fmt.Sprintf("%s_FILE names %s, which does not exist", name, path)}
		}
		return "", false, &fileRefError{fmt.Sprintf("%s_FILE: %v", name, err)}
	}
	v = strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(v) == "" {
		// An empty secret file (a generator that failed) must not quietly turn into a
		// default: for the snapshot key that would store snapshots unsealed.
		return "", false, &fileRefError{fmt.Sprintf("%s_FILE names %s, which is empty", name, path)}
	}
	return v, true, nil
}

// readSmallFile reads a regular file of at most 64 KiB (a secret, not /dev/zero or a FIFO).
func readSmallFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > 64<<10 {
		return nil, fmt.Errorf("%s is not a regular file of at most 64 KiB", path)
	}
	return os.ReadFile(path)
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
