package control

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// serveUnix serves h on a unix socket for the test's duration and returns its path.
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return path
}

func TestClient_ErrorCarriesTheServersMessage(t *testing.T) {
	path := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "a switchover is already pending"})
	}))
	err := NewClient(path, DefaultTimeout).Do(context.Background(), http.MethodPost, "/switchover", nil)
	if err == nil || err.Error() != "a switchover is already pending" {
		t.Errorf("Do = %v, want the server's message", err)
	}
}

// An answer without a message (a proxy's, a panic's) still says what failed: never an empty error.
func TestClient_ErrorWithoutAMessageNamesTheStatus(t *testing.T) {
	path := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	err := NewClient(path, 0).Do(context.Background(), http.MethodPost, "/backup", nil)
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("Do = %v, want the HTTP status", err)
	}
}

func TestClient_NoNodeSaysSo(t *testing.T) {
	err := NewClient(filepath.Join(t.TempDir(), "absent.sock"), DefaultTimeout).Do(context.Background(), http.MethodGet, "/status", nil)
	if err == nil || !strings.Contains(err.Error(), "is mysqlpilot running") {
		t.Errorf("Do = %v, want the hint", err)
	}
}
