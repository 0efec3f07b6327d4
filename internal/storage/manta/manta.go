// Package manta stores objects in Joyent/Triton Manta (e.g. https://us-central.manta.mnx.io),
// speaking its REST API directly: joyent/gomanta is not fetchable and cannot stream, and
// triton-go's client is unmaintained and signs with RSA-SHA1 and PKCS#1 keys only.
//
// Protocol, as implemented:
//
//   - Every request carries a Date header and an HTTP Signature over it:
//     Authorization: Signature keyId="/login/keys/<md5>",algorithm="rsa-sha256",headers="date",signature="..."
//     (subuser: keyId "/login/subuser/keys/<md5>"; roles: a Role header). RSA keys sign with
//     rsa-sha256, ECDSA keys with ecdsa-sha256/384/512 by curve, Ed25519 keys with ed25519-sha512
//     (muskie accepts that since MANTA-5467, December 2023; older deployments answer
//     InvalidAlgorithm).
//   - Put creates the missing parent directories (PUT, Content-Type "application/json;
//     type=directory", each created directory cached), then streams the object with one PUT,
//     Transfer-Encoding chunked, Content-Type application/octet-stream, and Durability-Level and
//     Max-Content-Length when configured. It checks the Computed-MD5 Manta answers against the
//     MD5 of the bytes it sent.
//   - Atomicity: the PUT goes straight to the final name. Manta (muskie) streams the bytes to
//     the storage nodes first and writes the object's metadata record, which is what makes a
//     name visible, only after the whole body has arrived and the copies agree on its MD5. A
//     failed, cut or cancelled upload (the chunked body then never sees its terminating chunk)
//     therefore leaves the name absent, or its previous version intact. This is as atomic as an
//     upload to a temporary name followed by a SnapLink, and unlike that it works on Manta v2,
//     which refuses every new SnapLink (SnaplinksDisabledError, MANTA-4717).
//   - Get streams the object and checks its Content-MD5 at EOF; Stat is a HEAD; Delete a DELETE
//     (directories are left in place).
//   - List reads directories as newline-delimited JSON ({"name","type","mtime","size",...}) in
//     pages of PageSize with limit and marker; Manta's marker is inclusive, so each page after
//     the first repeats the previous page's last entry, which is skipped. A listing ends at the
//     first page that brings no new entry (this also copes with servers that cap limit).
//     Subdirectories are listed recursively.
//   - Errors come back as {"code","message"}; they are decoded into *Error, and ResourceNotFound
//     and DirectoryDoesNotExist satisfy errors.Is(err, storage.ErrNotFound).
//
// Not implemented: multipart uploads (one streamed PUT holds up to Max-Content-Length, 5 GB by
// Manta's default; set MaxObjectSize for larger backups), retries (the caller retries whole
// operations; Error.Temporary says when that may help), ssh-agent keys, signed URLs.
package manta

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
)

// DefaultPageSize is the listing page size when Options.PageSize is 0 (Manta's maximum is 1024).
const DefaultPageSize = 1000

// Options configures a Store.
type Options struct {
	// URL of the Manta endpoint, e.g. "https://us-central.manta.mnx.io". Required.
	URL string
	// User is the account login that owns the storage (MANTA_USER). Required.
	User string
	// Subuser is an RBAC subuser login; optional.
	Subuser string
	// Role is sent in the Role header (comma-separated RBAC roles); optional.
	Role string
	// KeyID is the key's fingerprint (MANTA_KEY_ID): MD5 ("aa:bb:..", optionally "MD5:"-prefixed)
	// or SHA256 ("SHA256:..."). Optional: derived from the key when empty. Whatever is given is
	// checked against the key; Manta is always sent the MD5 form.
	KeyID string
	// KeyPath is a private key file; KeyPEM its contents (wins over KeyPath). RSA (PKCS#1,
	// PKCS#8, OpenSSH), ECDSA P-256/384/521 or Ed25519.
	KeyPath string
	KeyPEM  []byte
	// KeyPassphrase decrypts a passphrase-protected key; optional.
	KeyPassphrase []byte
	// Dir is the directory objects live in: absolute ("/login/stor/snapshots") or relative to
	// /login/stor ("snapshots"). Optional, defaults to /login/stor.
	Dir string
	// Durability is the number of copies Manta keeps (Durability-Level, 1-9); optional, 0 leaves
	// Manta's default (2).
	Durability int
	// MaxObjectSize is sent as Max-Content-Length on every Put: Manta needs it to place a
	// streamed object larger than its default limit (5 GB). Optional.
	MaxObjectSize int64
	// PageSize is the listing page size; optional, defaults to DefaultPageSize.
	PageSize int
	// HTTPClient is used for every request; optional. It should have no overall Timeout (Puts
	// stream for as long as a backup runs); bound requests with contexts instead.
	HTTPClient *http.Client
	// Now is the clock used to date requests; optional (time.Now).
	Now func() time.Time
}

// Store is a storage.Store in a Manta directory.
type Store struct {
	base     *url.URL // endpoint, no trailing "/"
	root     string   // "/login/stor" or "/login/public": created by Manta, never by us
	dir      string   // absolute directory of the store, under root
	user     string
	role     string
	copies   int
	maxSize  int64
	pageSize int
	client   *http.Client
	sign     *signer

	mu      sync.Mutex
	madeDir map[string]bool // directories known to exist
}

var _ storage.Store = (*Store)(nil)

// New checks opts, loads the private key and returns a Store. It does not contact Manta.
func New(opts Options) (*Store, error) {
	if opts.URL == "" || opts.User == "" {
		return nil, errors.New("manta: URL and User are required")
	}
	u, err := url.Parse(strings.TrimRight(opts.URL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("manta: URL %q is not an http(s) URL", opts.URL)
	}
	if strings.Contains(opts.User, "/") || strings.Contains(opts.Subuser, "/") {
		return nil, errors.New("manta: User and Subuser may not contain /")
	}
	dir, root, err := resolveDir(opts.User, opts.Dir)
	if err != nil {
		return nil, err
	}
	if opts.Durability < 0 || opts.Durability > 9 {
		return nil, fmt.Errorf("manta: Durability %d is outside 1-9", opts.Durability)
	}
	if opts.PageSize < 0 || opts.PageSize > 1024 {
		return nil, fmt.Errorf("manta: PageSize %d is outside 1-1024", opts.PageSize)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	sig, err := newSigner(opts, now)
	if err != nil {
		return nil, fmt.Errorf("manta: %w", err)
	}
	client := opts.HTTPClient
	if client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ExpectContinueTimeout = time.Second
		client = &http.Client{Transport: t}
	}
	s := &Store{
		base: u, root: root, dir: dir, user: opts.User, role: opts.Role,
		copies: opts.Durability, maxSize: opts.MaxObjectSize, pageSize: opts.PageSize,
		client: client, sign: sig, madeDir: map[string]bool{root: true},
	}
	if s.pageSize == 0 {
		s.pageSize = DefaultPageSize
	}
	return s, nil
}

// resolveDir turns Options.Dir into an absolute directory and the top-level directory it lives
// in.
func resolveDir(user, dir string) (abs, root string, err error) {
	dir = strings.TrimRight(dir, "/")
	if !strings.HasPrefix(dir, "/") {
		if dir != "" {
			dir = "/" + dir
		}
		dir = "/" + user + "/stor" + dir
	}
	parts := strings.Split(dir, "/") // "", user, stor, ...
	if len(parts) < 3 || parts[1] != user || (parts[2] != "stor" && parts[2] != "public") {
		return "", "", fmt.Errorf("manta: Dir %q is not under /%s/stor or /%s/public", dir, user, user)
	}
	for _, p := range parts[1:] {
		if p == "" || p == "." || p == ".." {
			return "", "", fmt.Errorf("manta: Dir %q has an empty, . or .. segment", dir)
		}
	}
	return dir, "/" + user + "/" + parts[2], nil
}

// String names the endpoint and directory, e.g. "manta://us-central.manta.mnx.io/login/stor/snapshots".
func (s *Store) String() string { return "manta://" + s.base.Host + s.dir }

func (s *Store) path(name string) string { return s.dir + "/" + name }

// Put streams r to name (see the package comment for why this is atomic).
func (s *Store) Put(ctx context.Context, name string, r io.Reader) (storage.Object, error) {
	if err := storage.CheckName(name); err != nil {
		return storage.Object{}, fmt.Errorf("manta: put: %w", err)
	}
	p := s.path(name)
	parent := p[:strings.LastIndex(p, "/")]
	if err := s.mkdirAll(ctx, parent); err != nil {
		return storage.Object{}, fmt.Errorf("manta: put %s: %w", p, err)
	}
	body := &uploadBody{r: storage.ContextReader(ctx, r), md5: md5.New()}
	resp, err := s.putObject(ctx, p, body)
	var merr *Error
	if errors.As(err, &merr) && merr.Code == "DirectoryDoesNotExist" && body.n == 0 && body.err == nil {
		// Someone removed a directory we had cached. Manta refused before reading the body
		// (we send Expect: 100-continue), so the same reader can still be sent.
		s.forgetDirs(parent)
		if err = s.mkdirAll(ctx, parent); err == nil {
			resp, err = s.putObject(ctx, p, body)
		}
	}
	if err != nil {
		if body.err != nil && !errors.Is(err, body.err) {
			// The transport reports the aborted request; the cause is the reader's failure.
			err = fmt.Errorf("%w (upload aborted: %v)", body.err, err)
		}
		if errors.As(err, &merr) && merr.Code == "DirectoryDoesNotExist" {
			s.forgetDirs(parent)
		}
		return storage.Object{}, fmt.Errorf("manta: put %s: %w", p, err)
	}
	resp.Body.Close()
	sum := base64.StdEncoding.EncodeToString(body.md5.Sum(nil))
	if got := resp.Header.Get("Computed-Md5"); got != "" && got != sum {
		// The bytes Manta stored are not the bytes we sent: do not leave them under name.
		delErr := s.Delete(context.WithoutCancel(ctx), name)
		return storage.Object{}, fmt.Errorf("manta: put %s: Manta computed MD5 %s for what we sent as %s (removed: %v)", p, got, sum, delErr)
	}
	mtime, _ := http.ParseTime(resp.Header.Get("Last-Modified"))
	if mtime.IsZero() {
		mtime = s.sign.now()
	}
	return storage.Object{Name: name, Size: body.n, ModTime: mtime}, nil
}

func (s *Store) putObject(ctx context.Context, p string, body io.Reader) (*http.Response, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Expect", "100-continue")
	if s.copies > 0 {
		h.Set("Durability-Level", strconv.Itoa(s.copies))
	}
	if s.maxSize > 0 {
		h.Set("Max-Content-Length", strconv.FormatInt(s.maxSize, 10))
	}
	return s.do(ctx, http.MethodPut, p, nil, h, body)
}

// uploadBody counts and hashes what the transport reads, and remembers the reader's own error
// (the transport replaces it with its own when it aborts the request).
type uploadBody struct {
	r   io.Reader
	md5 hash.Hash
	n   int64
	err error
}

func (b *uploadBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.md5.Write(p[:n])
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// Get opens name for streaming; the reader fails at EOF if the bytes do not match the
// object's Content-MD5.
func (s *Store) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := storage.CheckName(name); err != nil {
		return nil, fmt.Errorf("manta: get: %w", err)
	}
	p := s.path(name)
	resp, err := s.do(ctx, http.MethodGet, p, nil, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("manta: get %s: %w", p, err)
	}
	if isDirectory(resp.Header) {
		resp.Body.Close()
		return nil, fmt.Errorf("manta: get %s: is a directory: %w", p, storage.ErrNotFound)
	}
	return &downloadBody{rc: resp.Body, md5: md5.New(), want: resp.Header.Get("Content-Md5"), path: p}, nil
}

// downloadBody checks a download's MD5 at EOF and names the object in read errors.
type downloadBody struct {
	rc   io.ReadCloser
	md5  hash.Hash
	want string
	path string
}

func (d *downloadBody) Read(p []byte) (int, error) {
	n, err := d.rc.Read(p)
	d.md5.Write(p[:n])
	switch {
	case err == io.EOF:
		if got := base64.StdEncoding.EncodeToString(d.md5.Sum(nil)); d.want != "" && got != d.want {
			return n, fmt.Errorf("manta: get %s: content MD5 is %s, Manta says %s", d.path, got, d.want)
		}
	case err != nil:
		err = fmt.Errorf("manta: get %s: %w", d.path, err)
	}
	return n, err
}

func (d *downloadBody) Close() error { return d.rc.Close() }

// Stat describes name with a HEAD request.
func (s *Store) Stat(ctx context.Context, name string) (storage.Object, error) {
	if err := storage.CheckName(name); err != nil {
		return storage.Object{}, fmt.Errorf("manta: stat: %w", err)
	}
	p := s.path(name)
	resp, err := s.do(ctx, http.MethodHead, p, nil, nil, nil)
	var merr *Error
	if errors.As(err, &merr) && merr.Code == "" && merr.StatusCode < 500 && merr.StatusCode != http.StatusNotFound {
		// An answer to HEAD has no body, so no code or message: ask again with GET to learn
		// why (an auth failure, say), reading no object bytes.
		if gresp, gerr := s.do(ctx, http.MethodGet, p, nil, nil, nil); gerr != nil {
			err = gerr
		} else {
			gresp.Body.Close()
		}
	}
	if err != nil {
		return storage.Object{}, fmt.Errorf("manta: stat %s: %w", p, err)
	}
	resp.Body.Close()
	if isDirectory(resp.Header) {
		return storage.Object{}, fmt.Errorf("manta: stat %s: is a directory: %w", p, storage.ErrNotFound)
	}
	size, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if err != nil {
		return storage.Object{}, fmt.Errorf("manta: stat %s: bad Content-Length %q", p, resp.Header.Get("Content-Length"))
	}
	mtime, _ := http.ParseTime(resp.Header.Get("Last-Modified"))
	return storage.Object{Name: name, Size: size, ModTime: mtime}, nil
}

// Delete removes the object name.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := storage.CheckName(name); err != nil {
		return fmt.Errorf("manta: delete: %w", err)
	}
	p := s.path(name)
	resp, err := s.do(ctx, http.MethodDelete, p, nil, nil, nil)
	if err != nil {
		return fmt.Errorf("manta: delete %s: %w", p, err)
	}
	resp.Body.Close()
	return nil
}

// entry is one line of a directory listing.
type entry struct {
	Name  string    `json:"name"`
	Type  string    `json:"type"` // "object" or "directory"
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
}

// List returns every object whose name starts with prefix, sorted by name. It lists the
// deepest directory the prefix names in full, keeps the entries that match the rest of the
// prefix and descends into matching subdirectories.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := storage.CheckPrefix(prefix); err != nil {
		return nil, fmt.Errorf("manta: list: %w", err)
	}
	dirName, rest := "", prefix
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dirName, rest = prefix[:i+1], prefix[i+1:]
	}
	var out []storage.Object
	var walk func(dirName, match string) error
	walk = func(dirName, match string) error {
		p := strings.TrimSuffix(s.dir+"/"+dirName, "/")
		return s.readDir(ctx, p, func(e entry) error {
			if !strings.HasPrefix(e.Name, match) {
				return nil
			}
			switch e.Type {
			case "object":
				out = append(out, storage.Object{Name: dirName + e.Name, Size: e.Size, ModTime: e.MTime})
			case "directory":
				return walk(dirName+e.Name+"/", "")
			}
			return nil
		})
	}
	if err := walk(dirName, rest); err != nil {
		return nil, fmt.Errorf("manta: list %s/%s: %w", s.dir, prefix, err)
	}
	slices.SortFunc(out, func(a, b storage.Object) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// readDir calls fn for each entry of directory p, page by page. A missing directory, or an
// object where a directory was expected, has no entries.
func (s *Store) readDir(ctx context.Context, p string, fn func(entry) error) error {
	marker := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(s.pageSize)}}
		if marker != "" {
			q.Set("marker", marker)
		}
		resp, err := s.do(ctx, http.MethodGet, p, q, nil, nil)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if !isDirectory(resp.Header) {
			resp.Body.Close()
			return nil
		}
		fresh, last, err := s.readPage(resp.Body, marker, fn)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("list %s: %w", p, err)
		}
		if fresh == 0 {
			return nil
		}
		marker = last
	}
}

// readPage decodes one page of a listing, skipping the entry equal to marker (Manta's marker is
// inclusive; only equality is tested, as Manta's collation need not be Go's byte order), and returns how many new entries it passed to fn and the last name.
func (s *Store) readPage(body io.Reader, marker string, fn func(entry) error) (fresh int, last string, err error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return fresh, last, fmt.Errorf("decode entry %q: %w", line, err)
		}
		if e.Name == "" || e.Name == marker {
			continue
		}
		fresh++
		last = e.Name
		if err := fn(e); err != nil {
			return fresh, last, err
		}
	}
	return fresh, last, sc.Err()
}

// mkdirAll creates dir and its missing parents below the top-level directory, top down,
// remembering which exist.
func (s *Store) mkdirAll(ctx context.Context, dir string) error {
	s.mu.Lock()
	known := s.madeDir[dir]
	s.mu.Unlock()
	if known {
		return nil
	}
	var todo []string
	for d := dir; d != s.root && len(d) > len(s.root); d = d[:strings.LastIndex(d, "/")] {
		todo = append(todo, d)
	}
	slices.Reverse(todo)
	for _, d := range todo {
		s.mu.Lock()
		known := s.madeDir[d]
		s.mu.Unlock()
		if known {
			continue
		}
		h := http.Header{"Content-Type": {"application/json; type=directory"}}
		resp, err := s.do(ctx, http.MethodPut, d, nil, h, nil)
		if err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
		resp.Body.Close()
		s.mu.Lock()
		s.madeDir[d] = true
		s.mu.Unlock()
	}
	return nil
}

// forgetDirs drops dir and its parents from the cache of existing directories.
func (s *Store) forgetDirs(dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for d := dir; len(d) > len(s.root); d = d[:strings.LastIndex(d, "/")] {
		delete(s.madeDir, d)
	}
}

// do sends one signed request and turns an error status into an *Error.
func (s *Store) do(ctx context.Context, method, p string, q url.Values, h http.Header, body io.Reader) (*http.Response, error) {
	u := *s.base
	u.Path = s.base.Path + p
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "*/*")
	if s.role != "" {
		req.Header.Set("Role", s.role)
	}
	if err := s.sign.authorize(req); err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, decodeError(resp)
	}
	return resp, nil
}

// isDirectory reports whether a response describes a directory.
func isDirectory(h http.Header) bool {
	_, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && params["type"] == "directory"
}
