package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a real S3 server (versitygw serving a temporary directory) on loopback.
type S3 struct {
	Endpoint  string // "127.0.0.1:port", plain http
	AccessKey string
	SecretKey string
	Bucket    string // created by StartS3
	Dir       string // the directory versitygw serves; buckets are its subdirectories

	t   testing.TB
	bin string
	log *s3LogBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// s3StartTimeout bounds how long versitygw may take to accept connections.
const s3StartTimeout = 30 * time.Second

// StartS3 starts versitygw (see test/tools/install-versitygw.sh) with fresh credentials on a
// free loopback port, waits until it accepts connections and creates a bucket. The server is
// stopped when the test ends; its output is logged if the test failed.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	s := &S3{
		Endpoint:  Addr(FreePort(t)),
		AccessKey: "mysqlpilot-test",
		SecretKey: "mysqlpilot-test-secret-" + fmt.Sprint(time.Now().UnixNano()),
		Bucket:    "snapshots",
		Dir:       t.TempDir(),
		t:         t,
		bin:       Tool(t, "versitygw", "test/tools/install-versitygw.sh"),
		log:       &s3LogBuffer{},
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("versitygw output:\n%s", s.log.String())
		}
	})
	s.Start()
	ctx, cancel := context.WithTimeout(context.Background(), s3StartTimeout)
	defer cancel()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatalf("harness: s3 client: %v", err)
	}
	if err := c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("harness: create bucket %s: %v", s.Bucket, err)
	}
	return s
}

// Start starts the server (again) on the same port and directory and waits until it accepts
// connections. It does nothing when the server is running.
func (s *S3) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin, "--port", s.Endpoint, "--quiet", "posix", s.Dir)
	// Credentials through the environment (versitygw reads ROOT_ACCESS_KEY_ID and
	// ROOT_SECRET_ACCESS_KEY), not argv, where any process could read them.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("harness: start versitygw: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	if err := s3WaitListening(s.Endpoint, done, s3StartTimeout); err != nil {
		s.stopLocked()
		s.t.Fatalf("harness: versitygw on %s: %v\n%s", s.Endpoint, err, s.log.String())
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and waits for it to exit, as in an
// outage; Start brings it back with its data. It does nothing when the server is stopped.
func (s *S3) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *S3) stopLocked() {
	if s.cmd == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// URL is the endpoint as an http URL.
func (s *S3) URL() string { return "http://" + s.Endpoint }

// s3WaitListening waits until addr accepts a TCP connection, the process exits (exited is
// closed) or timeout passes. A port has no readiness event to wait on, so it dials on a short
// ticker.
func s3WaitListening(addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before accepting connections")
		case <-deadline.C:
			return fmt.Errorf("not accepting connections after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// s3LogBuffer collects a process's output for the test log.
type s3LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *s3LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *s3LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// BucketDir is the directory holding the bucket's objects.
func (s *S3) BucketDir() string { return filepath.Join(s.Dir, s.Bucket) }
