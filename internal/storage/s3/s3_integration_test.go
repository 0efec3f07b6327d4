//go:build integration

package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/storagetest"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// storeOn returns a store on srv's bucket under a prefix of its own.
func storeOn(t *testing.T, srv *harness.S3, mod func(*Options)) *Store {
	t.Helper()
	o := Options{
		Endpoint: srv.URL(), Bucket: srv.Bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		PathStyle: true, Prefix: strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()),
	}
	if mod != nil {
		mod(&o)
	}
	st, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestIntegrationConformance(t *testing.T) {
	srv := harness.StartS3(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		// 5 MiB parts: the 17 MiB object takes four, and a failing source has sent one.
		return storeOn(t, srv, func(o *Options) { o.PartSize = MinPartSize })
	})
}

func TestIntegrationEnsureBucket(t *testing.T) {
	srv := harness.StartS3(t)
	st := storeOn(t, srv, func(o *Options) { o.Bucket = "fresh-bucket" })
	ctx := context.Background()
	_, err := st.Put(ctx, "x", strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), "bucket fresh-bucket does not exist") {
		t.Errorf("Put into a missing bucket = %v, want it named", err)
	}
	for range 2 { // idempotent
		if err := st.EnsureBucket(ctx); err != nil {
			t.Fatalf("EnsureBucket: %v", err)
		}
	}
	if _, err := st.Put(ctx, "x", strings.NewReader("x")); err != nil {
		t.Errorf("Put after EnsureBucket: %v", err)
	}
}

func TestIntegrationWrongSecret(t *testing.T) {
	srv := harness.StartS3(t)
	st := storeOn(t, srv, func(o *Options) { o.SecretKey = "not-the-secret" })
	_, err := st.Put(context.Background(), "x", strings.NewReader("x"))
	if err == nil || errors.Is(err, storage.ErrNotFound) || strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("Put with a wrong secret = %v, want a clear error without the secret", err)
	}
	t.Log(err)
}

func TestIntegrationServerStopped(t *testing.T) {
	srv := harness.StartS3(t)
	st := storeOn(t, srv, func(o *Options) { o.MaxRetries = 2 })
	ctx := context.Background()
	if _, err := st.Put(ctx, "before", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	_, err := st.Put(ctx, "during", strings.NewReader("x"))
	if err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Put with the server stopped = %v, want a failure that is not ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "connection refused") || !strings.HasPrefix(err.Error(), "s3: put s3://snapshots/") {
		t.Errorf("error %q does not say what failed and why", err)
	}
	t.Logf("Put failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if _, err := st.Stat(ctx, "before"); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat with the server stopped = %v, want a failure that is not ErrNotFound", err)
	}
	if _, err := st.List(ctx, ""); err == nil {
		t.Error("List with the server stopped succeeded")
	}

	srv.Start()
	if _, err := st.Put(ctx, "after", strings.NewReader("y")); err != nil {
		t.Fatalf("Put after the server came back: %v", err)
	}
	objs, err := st.List(ctx, "")
	if err != nil || len(objs) != 2 {
		t.Errorf("List after the outage = %+v, %v; want before and after", objs, err)
	}
}

// patternReader yields n bytes cycling through a block, without allocating per read.
type patternReader struct {
	block []byte
	off   int
	left  int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := 0
	for n < len(b) {
		c := copy(b[n:], p.block[p.off:])
		p.off = (p.off + c) % len(p.block)
		n += c
	}
	p.left -= int64(n)
	return n, nil
}

// TestIntegrationPutMemoryIsBounded streams 200 MiB through Put and checks that the heap stays
// near one part, not the object's size.
func TestIntegrationPutMemoryIsBounded(t *testing.T) {
	const size = 200 << 20
	const heapBound = 64 << 20
	srv := harness.StartS3(t)
	st := storeOn(t, srv, nil) // default 16 MiB parts
	ctx := context.Background()

	block := storagetest.RandomBytes(7, 1<<20+13) // odd length: parts are not all alike
	sum := sha256.New()
	src := io.TeeReader(&patternReader{block: block, left: size}, sum)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	obj, err := st.Put(ctx, "big.bin", src)
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if obj.Size != size {
		t.Errorf("Put size = %d, want %d", obj.Size, size)
	}
	t.Logf("200 MiB Put in %v (%.0f MiB/s): heap in use before %.1f MiB, peak %.1f MiB; allocated during Put %.1f MiB",
		elapsed.Round(time.Millisecond), float64(size>>20)/elapsed.Seconds(),
		float64(before.HeapInuse)/(1<<20), float64(peak.Load())/(1<<20), float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	if p := peak.Load(); p > heapBound {
		t.Errorf("peak heap in use %.1f MiB exceeds %d MiB: Put buffers more than a part", float64(p)/(1<<20), heapBound>>20)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/2 {
		t.Errorf("Put allocated %.1f MiB for a %d MiB object: allocation grows with the object", float64(alloc)/(1<<20), size>>20)
	}

	rc, err := st.Get(ctx, "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := sha256.New()
	if _, err := io.Copy(got, rc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), sum.Sum(nil)) {
		t.Error("200 MiB object read back differs")
	}
}

func TestIntegrationFailedPutAbortsItsUpload(t *testing.T) {
	srv := harness.StartS3(t)
	st := storeOn(t, srv, func(o *Options) { o.PartSize = MinPartSize })
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := st.Put(ctx, "failed", storagetest.FailingReader(make([]byte, 12<<20), 11<<20)); err == nil {
		t.Fatal("Put with a failing reader succeeded")
	}
	// A cancelled context must not stop the abort from reaching the server.
	cancelled := io.MultiReader(bytes.NewReader(make([]byte, 7<<20)), readerFunc(func([]byte) (int, error) {
		cancel()
		return 0, ctx.Err()
	}))
	if _, err := st.Put(ctx, "cancelled", cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Put = %v", err)
	}
	// The listing does see an open upload: start one on purpose.
	core := minio.Core{Client: st.client}
	id, err := core.NewMultipartUpload(context.Background(), st.bucket, st.key("canary"), minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for u := range st.client.ListIncompleteUploads(context.Background(), st.bucket, st.prefix, true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		open = append(open, strings.TrimPrefix(u.Key, st.prefix))
	}
	if len(open) != 1 || open[0] != "canary" {
		t.Errorf("open uploads = %q, want only the canary", open)
	}
	core.AbortMultipartUpload(context.Background(), st.bucket, st.key("canary"), id)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
