package config

import (
	"fmt"
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
		v, ok := env(name)
		if hasDef && (!ok || v == "") {
			v = def
		}
		b.WriteString(v)
		i += 2 + end
	}
	return b.String(), nil
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
