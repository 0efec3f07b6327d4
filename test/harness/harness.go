// Package harness starts the real parts that integration tests need (a Consul dev agent,
// MariaDB servers, an S3 server) on loopback, and stops them when the test ends.
package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ToolsDir is where test/tools/install-*.sh put the binaries they build.
func ToolsDir() string {
	if d := os.Getenv("MYSQLPILOT_TOOLS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "mysqlpilot", "bin")
}

// Tool finds a binary in ToolsDir or PATH, or fails the test saying how to install it.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	if p := filepath.Join(ToolsDir(), name); isExec(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("harness: %s not found in %s or PATH; run %s", name, ToolsDir(), install)
	return ""
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Addr formats a loopback address.
func Addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
