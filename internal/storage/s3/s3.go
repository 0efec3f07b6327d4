// Package s3 stores objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, versitygw...)
// through minio-go.
//
// Put streams with a multipart upload of unknown size and an explicit part size: minio-go then
// holds one part in memory at a time (about PartSize per Put; without an explicit size it
// would buffer parts sized for a 5 TiB object). The object appears only when the upload is
// completed, and a failed or cancelled Put aborts the upload, so a reader failing midway never
// leaves a partial object under the name, nor disturbs its previous version. The largest
// object is 10,000 parts × PartSize (156 GiB at the default 16 MiB).
package s3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
)

// Part sizes.
const (
	DefaultPartSize = 16 << 20 // memory per Put, and 1/10000 of the largest object
	MinPartSize     = 5 << 20  // S3's minimum for all parts but the last
)

// Options configures a Store.
type Options struct {
	// Endpoint is "host[:port]" or "http(s)://host[:port]"; a scheme overrides UseTLS. Required.
	Endpoint string
	// Bucket is the bucket name. Required.
	Bucket string
	// Region defaults to "us-east-1" (setting it saves a bucket-location lookup).
	Region string
	// AccessKey and SecretKey are static credentials; never logged or shown.
	AccessKey string
	SecretKey string
	// Prefix is prepended to every object name (a "/" is added when missing); optional.
	Prefix string
	// UseTLS selects https for an Endpoint without a scheme.
	UseTLS bool
	// Insecure skips TLS certificate verification (self-signed test endpoints only).
	Insecure bool
	// PathStyle forces path-style requests (host/bucket/key), which MinIO, versitygw and most
	// self-hosted servers want; otherwise minio-go picks (virtual-host style on AWS).
	PathStyle bool
	// PartSize is the multipart part size in bytes: DefaultPartSize when 0, at least MinPartSize.
	PartSize int64
	// MaxRetries per request; 0 keeps minio-go's default (10, with backoff capped at 1 s).
	MaxRetries int
	// Transport replaces the HTTP transport; optional.
	Transport http.RoundTripper
}

// Store is a storage.Store in an S3 bucket.
type Store struct {
	client   *minio.Client
	bucket   string
	prefix   string
	region   string
	partSize int64
	where    string // for String and errors: "s3://bucket/prefix"
}

var _ storage.Store = (*Store)(nil)

// New checks opts and returns a Store. It does not contact the server.
func New(opts Options) (*Store, error) {
	if opts.Endpoint == "" || opts.Bucket == "" {
		return nil, errors.New("s3: Endpoint and Bucket are required")
	}
	host, secure := opts.Endpoint, opts.UseTLS
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("s3: Endpoint %q is not host[:port] or http(s)://host[:port]", opts.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	partSize := opts.PartSize
	switch {
	case partSize == 0:
		partSize = DefaultPartSize
	case partSize < MinPartSize:
		return nil, fmt.Errorf("s3: PartSize %d is below the S3 minimum of %d (5 MiB)", partSize, MinPartSize)
	}
	region := opts.Region
	if region == "" {
		region = "us-east-1"
	}
	transport := opts.Transport
	if transport == nil {
		t, err := minio.DefaultTransport(secure)
		if err != nil {
			return nil, fmt.Errorf("s3: transport: %w", err)
		}
		if opts.Insecure {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{}
			}
			t.TLSClientConfig.InsecureSkipVerify = true
		}
		transport = t
	}
	mo := &minio.Options{
		Creds:      credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, ""),
		Secure:     secure,
		Region:     region,
		Transport:  transport,
		MaxRetries: opts.MaxRetries,
	}
	if opts.PathStyle {
		mo.BucketLookup = minio.BucketLookupPath
	}
	client, err := minio.New(host, mo)
	if err != nil {
		return nil, fmt.Errorf("s3: endpoint %s: %w", host, err)
	}
	prefix := opts.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if err := storage.CheckPrefix(prefix); err != nil {
		return nil, fmt.Errorf("s3: Prefix: %w", err)
	}
	return &Store{
		client: client, bucket: opts.Bucket, prefix: prefix, region: region, partSize: partSize,
		where: "s3://" + opts.Bucket + "/" + prefix,
	}, nil
}

// String names the bucket and prefix, e.g. "s3://backups/db1/ at https://s3.example.com". It
// never includes credentials.
func (s *Store) String() string { return s.where + " at " + s.client.EndpointURL().String() }

// EnsureBucket creates the bucket when it does not exist.
func (s *Store) EnsureBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3: check bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
	if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
		return nil // created meanwhile by someone else
	}
	if err != nil {
		return fmt.Errorf("s3: create bucket %s: %w", s.bucket, err)
	}
	return nil
}

func (s *Store) key(name string) string { return s.prefix + name }

// Put streams r to name with a multipart upload (see the package comment).
func (s *Store) Put(ctx context.Context, name string, r io.Reader) (storage.Object, error) {
	if err := storage.CheckName(name); err != nil {
		return storage.Object{}, fmt.Errorf("s3: put: %w", err)
	}
	info, err := s.client.PutObject(ctx, s.bucket, s.key(name), storage.ContextReader(ctx, r), -1, minio.PutObjectOptions{
		PartSize:    uint64(s.partSize),
		ContentType: "application/octet-stream",
	})
	if err != nil {
		return storage.Object{}, s.fail("put", name, err)
	}
	mtime := info.LastModified
	if mtime.IsZero() {
		mtime = time.Now()
	}
	return storage.Object{Name: name, Size: info.Size, ModTime: mtime}, nil
}

// Get opens name. The request is made before Get returns, so a missing object is reported
// here, not at the first Read.
func (s *Store) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := storage.CheckName(name); err != nil {
		return nil, fmt.Errorf("s3: get: %w", err)
	}
	body, _, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, s.key(name), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.fail("get", name, err)
	}
	return &readErrors{rc: body, s: s, name: name}, nil
}

// readErrors names the object in errors met while reading it.
type readErrors struct {
	rc   io.ReadCloser
	s    *Store
	name string
}

func (r *readErrors) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.fail("get", r.name, err)
	}
	return n, err
}

func (r *readErrors) Close() error { return r.rc.Close() }

// Stat describes name.
func (s *Store) Stat(ctx context.Context, name string) (storage.Object, error) {
	if err := storage.CheckName(name); err != nil {
		return storage.Object{}, fmt.Errorf("s3: stat: %w", err)
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.key(name), minio.StatObjectOptions{})
	if err != nil {
		return storage.Object{}, s.fail("stat", name, err)
	}
	return storage.Object{Name: name, Size: info.Size, ModTime: info.LastModified}, nil
}

// List returns every object whose name starts with prefix, sorted by name.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := storage.CheckPrefix(prefix); err != nil {
		return nil, fmt.Errorf("s3: list: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine if we return early
	var out []storage.Object
	for info := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true}) {
		if info.Err != nil {
			return nil, s.fail("list", prefix, info.Err)
		}
		name := strings.TrimPrefix(info.Key, s.prefix)
		if strings.HasSuffix(name, "/") {
			continue // a "directory marker" some tools create
		}
		out = append(out, storage.Object{Name: name, Size: info.Size, ModTime: info.LastModified})
	}
	slices.SortFunc(out, func(a, b storage.Object) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Delete removes name. S3 reports success for a missing key, so Delete first checks that the
// object exists, to return storage.ErrNotFound as the interface promises.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := storage.CheckName(name); err != nil {
		return fmt.Errorf("s3: delete: %w", err)
	}
	if _, err := s.client.StatObject(ctx, s.bucket, s.key(name), minio.StatObjectOptions{}); err != nil {
		return s.fail("delete", name, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.key(name), minio.RemoveObjectOptions{}); err != nil {
		return s.fail("delete", name, err)
	}
	return nil
}

// fail wraps err with the operation and object, turning S3's "no such key" into
// storage.ErrNotFound.
func (s *Store) fail(op, name string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || (resp.Code == "" && resp.StatusCode == http.StatusNotFound && op != "list"):
		return fmt.Errorf("s3: %s %s%s: %w: %w", op, s.where, name, storage.ErrNotFound, err)
	case resp.Code == "NoSuchBucket":
		return fmt.Errorf("s3: %s %s%s: bucket %s does not exist (create it, or call EnsureBucket): %w", op, s.where, name, s.bucket, err)
	case resp.Code == "AccessDenied" || resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch":
		return fmt.Errorf("s3: %s %s%s: %s, check the access key, secret key and bucket policy: %w", op, s.where, name, resp.Code, err)
	}
	return fmt.Errorf("s3: %s %s%s: %w", op, s.where, name, err)
}
