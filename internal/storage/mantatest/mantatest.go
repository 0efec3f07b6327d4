// Package mantatest is an in-process fake of Manta's storage API (directories, objects,
// SnapLinks) for tests, built on httptest. It is strict where a client can get Manta wrong:
//
//   - Every request must carry an HTTP Signature that verifies with a registered public key
//     (rsa-sha1/256/384/512, ecdsa-sha256/384/512, ed25519-sha512; keyId "/login/keys/<md5>" or
//     "/login/subuser/keys/<md5>"), over at least the Date header, dated within 300 s of the
//     server's clock. Failures answer like muskie: 401 AuthorizationRequired,
//     403 AuthorizationSchemeNotAllowed / InvalidKeyId / AccountDoesNotExist / KeyDoesNotExist /
//     InvalidSignature, 401 InvalidAlgorithm, and 400 InvalidHeader for a malformed header, a
//     missing Date or a clock skew over 300 s (muskie's http-signature parser reports skew so).
//   - Directories: PUT with "Content-Type: application/json; type=directory" (idempotent; the
//     parent must exist, else 404 DirectoryDoesNotExist); DELETE only when empty (else 400
//     DirectoryNotEmpty); GET lists children as newline-delimited JSON sorted by name, with
//     limit (default 256, at most 1024, and at most the page size set by SetPageSize) and an
//     inclusive marker, and a Result-Set-Size header.
//   - Objects: PUT with Content-Length or chunked (Max-Content-Length honoured, default 5 GiB),
//     Durability-Level 1-9, Content-MD5 checked; the object becomes visible only once its whole
//     body has arrived, so an aborted upload leaves nothing (or the previous version). Answers
//     carry Etag, Last-Modified and Computed-MD5. GET/HEAD/DELETE as Manta.
//   - SnapLinks: PUT with "Content-Type: application/json; type=link" and a Location header,
//     unless SetSnapLinks(false) makes them fail as on Manta v2 (403 SnaplinksDisabledError).
//   - Errors are JSON bodies {"code","message"} with muskie's codes.
//
// Faults can be injected (FailNext, CutNextPut, CutNextGet) and every request is recorded
// (Requests). Object bodies are kept in files under the test's temporary directory, so large
// uploads do not fill memory.
package mantatest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // rsa-sha1
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Limits that match Manta's.
const (
	DefaultListLimit = 256  // entries per listing page when the request has no limit
	MaxListLimit     = 1024 // largest limit accepted
	MaxClockSkew     = 300 * time.Second
	DefaultMaxStream = 5 << 30 // Max-Content-Length of a chunked PUT without one
	maxCopies        = 9
)

// Server is a fake Manta serving one account. All methods are safe for concurrent use.
type Server struct {
	t       testing.TB
	srv     *httptest.Server
	user    string
	dataDir string

	mu        sync.Mutex
	keys      map[string]crypto.PublicKey // "subuser/md5" ("" subuser: the account's keys)
	nodes     map[string]*node            // absolute path -> node
	now       func() time.Time
	pageSize  int
	snapLinks bool
	failN     int
	failOn    []string
	cutPut    int64 // <0: none
	cutGet    int64 // <0: none
	requests  []Request
	seq       int
}

// Request is what the server saw of one request.
type Request struct {
	Method    string
	Path      string
	Query     url.Values
	Header    http.Header
	Chunked   bool  // Transfer-Encoding: chunked
	BodyBytes int64 // object body bytes read
	Status    int   // status answered; 0 when none was (the connection was dropped on purpose)
}

type node struct {
	dir      bool
	children map[string]bool // names of entries, for directories
	mtime    time.Time
	// objects
	blob   *blob
	ctype  string
	copies int
	etag   string
}

// blob is an object's bytes on disk, shared by SnapLinks.
type blob struct {
	file string
	size int64
	md5  string // base64
	refs int
}

// apiError is an error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// New starts a server for account user that accepts requests signed with pub, an ssh.PublicKey
// or a crypto public key (*rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey); pub may be nil
// (add keys with AddKey). It stops when the test ends.
func New(t testing.TB, pub any, user string) *Server {
	t.Helper()
	if user == "" || strings.Contains(user, "/") {
		t.Fatalf("mantatest: bad user %q", user)
	}
	s := &Server{
		t: t, user: user, dataDir: t.TempDir(),
		keys: map[string]crypto.PublicKey{}, nodes: map[string]*node{},
		now: time.Now, pageSize: MaxListLimit, snapLinks: true, cutPut: -1, cutGet: -1,
	}
	epoch := time.Date(2013, 5, 22, 17, 39, 43, 0, time.UTC)
	s.nodes["/"+user] = &node{dir: true, children: map[string]bool{"stor": true, "public": true}, mtime: epoch}
	s.nodes["/"+user+"/stor"] = &node{dir: true, children: map[string]bool{}, mtime: epoch}
	s.nodes["/"+user+"/public"] = &node{dir: true, children: map[string]bool{}, mtime: epoch}
	if pub != nil {
		s.AddKey("", pub)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the server's base URL (http://127.0.0.1:port).
func (s *Server) URL() string { return s.srv.URL }

// User is the account login.
func (s *Server) User() string { return s.user }

// Close stops the server (as in an outage); the test's cleanup also does.
func (s *Server) Close() { s.srv.Close() }

// AddKey registers pub (see New) for the account (subuser "") or for an RBAC subuser and
// returns its MD5 fingerprint, the form a keyId carries.
func (s *Server) AddKey(subuser string, pub any) string {
	s.t.Helper()
	var sp ssh.PublicKey
	switch k := pub.(type) {
	case ssh.PublicKey:
		sp = k
	default:
		var err error
		if sp, err = ssh.NewPublicKey(k); err != nil {
			s.t.Fatalf("mantatest: AddKey: %v", err)
		}
	}
	cp, ok := sp.(ssh.CryptoPublicKey)
	if !ok {
		s.t.Fatalf("mantatest: AddKey: %s keys are not supported", sp.Type())
	}
	fp := ssh.FingerprintLegacyMD5(sp)
	s.mu.Lock()
	s.keys[subuser+"/"+fp] = cp.CryptoPublicKey()
	s.mu.Unlock()
	return fp
}

// SetNow replaces the server's clock (used to judge Date skew and to stamp mtimes).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// SetPageSize caps listing pages at n entries whatever limit a request asks for (Manta serves
// up to 1024). Tests set it small to exercise pagination.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	s.pageSize = max(1, min(n, MaxListLimit))
	s.mu.Unlock()
}

// SetSnapLinks enables (default, as Manta v1) or disables (as Manta v2) SnapLink creation.
func (s *Server) SetSnapLinks(enabled bool) {
	s.mu.Lock()
	s.snapLinks = enabled
	s.mu.Unlock()
}

// FailNext makes the next n requests whose method is one of methods (any method when none is
// given) fail with 503 ServiceUnavailable before anything else happens.
func (s *Server) FailNext(n int, methods ...string) {
	s.mu.Lock()
	s.failN, s.failOn = n, methods
	s.mu.Unlock()
}

// CutNextPut makes the next object PUT read after bytes of its body, then drop the connection
// without answering, as a network failure would. The object is not created.
func (s *Server) CutNextPut(after int64) {
	s.mu.Lock()
	s.cutPut = after
	s.mu.Unlock()
}

// CutNextGet makes the next object GET send after bytes of the object, then drop the
// connection (the Content-Length announced is the full size).
func (s *Server) CutNextGet(after int64) {
	s.mu.Lock()
	s.cutGet = after
	s.mu.Unlock()
}

// Requests returns a copy of the requests seen so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Paths returns every directory (with a trailing "/") and object below /user/stor and
// /user/public, sorted.
func (s *Server) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for p, n := range s.nodes {
		if strings.Count(p, "/") < 3 {
			continue // the account and its top-level directories
		}
		if n.dir {
			p += "/"
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// ReadObject returns the content of the object at absolute path p.
func (s *Server) ReadObject(p string) ([]byte, error) {
	s.mu.Lock()
	n := s.nodes[p]
	s.mu.Unlock()
	if n == nil || n.dir {
		return nil, fmt.Errorf("mantatest: no object at %s", p)
	}
	return os.ReadFile(n.blob.file)
}

// serve handles one request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(),
		Chunked: slices.Contains(r.TransferEncoding, "chunked")}
	rw := &recorder{ResponseWriter: w}
	s.mu.Lock()
	s.seq++
	id := s.seq
	s.mu.Unlock()
	defer func() {
		rec.Status = rw.status
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
	}()
	rw.Header().Set("X-Request-Id", fmt.Sprintf("mantatest-%d", id))
	rw.Header().Set("Server", "Manta/2 (mantatest)")
	if e := s.handle(rw, r, &rec); e != nil {
		writeError(rw, r, e)
	}
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request, rec *Request) *apiError {
	if s.takeFault(r.Method) {
		return errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "manta is unable to serve this request")
	}
	if e := s.authenticate(r); e != nil {
		return e
	}
	p, e := s.cleanPath(r.URL.Path)
	if e != nil {
		return e
	}
	switch r.Method {
	case http.MethodPut:
		mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch {
		case mt == "application/json" && params["type"] == "directory":
			return s.putDirectory(w, p)
		case mt == "application/json" && params["type"] == "link":
			return s.putSnapLink(w, r, p)
		default:
			return s.putObject(w, r, p, rec)
		}
	case http.MethodGet, http.MethodHead:
		return s.get(w, r, p)
	case http.MethodDelete:
		return s.delete(w, p)
	default:
		return errorf(http.StatusMethodNotAllowed, "MethodNotAllowed", "%s is not allowed", r.Method)
	}
}

func (s *Server) takeFault(method string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failN > 0 && (len(s.failOn) == 0 || slices.Contains(s.failOn, method)) {
		s.failN--
		return true
	}
	return false
}

// cleanPath checks that p is inside the account's namespace and has no empty, "." or ".."
// segment, and drops a trailing "/".
func (s *Server) cleanPath(p string) (string, *apiError) {
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	if p != "/"+s.user && !strings.HasPrefix(p, "/"+s.user+"/") {
		return "", errorf(http.StatusForbidden, "AuthorizationFailed", "%s is not allowed to access %s", s.user, p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", errorf(http.StatusBadRequest, "InvalidResource", "%s is not a valid resource", p)
		}
	}
	return p, nil
}

// isTop reports whether p is the account or one of its top-level directories.
func isTop(p string) bool { return strings.Count(p, "/") < 3 }

func parentOf(p string) (dir, name string) {
	i := strings.LastIndex(p, "/")
	return p[:i], p[i+1:]
}

// checkParentLocked finds p's parent directory.
func (s *Server) checkParentLocked(p string) (*node, *apiError) {
	dir, _ := parentOf(p)
	if strings.Count(p, "/") < 3 {
		return nil, errorf(http.StatusBadRequest, "OperationNotAllowedOnRootDirectory", "PUT is not allowed on %s", p)
	}
	parent := s.nodes[dir]
	if parent == nil {
		return nil, errorf(http.StatusNotFound, "DirectoryDoesNotExist", "%s does not exist", dir)
	}
	if !parent.dir {
		return nil, errorf(http.StatusBadRequest, "ParentNotDirectory", "%s is not a directory", dir)
	}
	return parent, nil
}

func (s *Server) putDirectory(w http.ResponseWriter, p string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nodes[p]; n != nil {
		if !n.dir {
			return errorf(http.StatusBadRequest, "InvalidUpdate", "%s is an object", p)
		}
		w.WriteHeader(http.StatusNoContent) // idempotent
		return nil
	}
	parent, e := s.checkParentLocked(p)
	if e != nil {
		return e
	}
	_, name := parentOf(p)
	s.nodes[p] = &node{dir: true, children: map[string]bool{}, mtime: s.now()}
	parent.children[name] = true
	w.Header().Set("Last-Modified", s.now().UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) putObject(w http.ResponseWriter, r *http.Request, p string, rec *Request) *apiError {
	s.mu.Lock()
	_, e := s.checkParentLocked(p)
	if n := s.nodes[p]; e == nil && n != nil && n.dir {
		e = errorf(http.StatusBadRequest, "OperationNotAllowedOnDirectory", "%s is a directory", p)
	}
	cut := s.cutPut
	if e == nil {
		s.cutPut = -1
	}
	s.mu.Unlock()
	if e != nil {
		return e
	}
	copies := 2
	if v := r.Header.Get("Durability-Level"); v != "" {
		c, err := strconv.Atoi(v)
		if err != nil || c < 1 || c > maxCopies {
			return errorf(http.StatusBadRequest, "InvalidDurabilityLevel", "durability-level must be between 1 and %d", maxCopies)
		}
		copies = c
	}
	limit := r.ContentLength
	if limit < 0 {
		limit = DefaultMaxStream
		if v := r.Header.Get("Max-Content-Length"); v != "" {
			l, err := strconv.ParseInt(v, 10, 64)
			if err != nil || l < 0 {
				return errorf(http.StatusBadRequest, "InvalidMaxContentLength", "%q is an invalid max-content-length value", v)
			}
			limit = l
		}
	}

	f, err := os.CreateTemp(s.dataDir, "object-*")
	if err != nil {
		return errorf(http.StatusInternalServerError, "InternalError", "%v", err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := md5.New()
	dst := io.MultiWriter(f, h)
	if cut >= 0 {
		rec.BodyBytes, _ = io.CopyN(dst, r.Body, cut)
		panic(http.ErrAbortHandler) // drop the connection, answer nothing (the deferred cleanup runs)
	}
	n, err := io.Copy(dst, io.LimitReader(r.Body, limit+1))
	rec.BodyBytes = n
	if err != nil {
		return errorf(499, "UploadAbandoned", "request was aborted prematurely by the client")
	}
	if n > limit {
		return errorf(http.StatusRequestEntityTooLarge, "MaxContentLengthExceeded", "request has exceeded %d bytes", limit)
	}
	if err := f.Close(); err != nil {
		return errorf(http.StatusInternalServerError, "InternalError", "%v", err)
	}
	sum := base64.StdEncoding.EncodeToString(h.Sum(nil))
	if want := r.Header.Get("Content-Md5"); want != "" && want != sum {
		return errorf(http.StatusBadRequest, "ContentMD5Mismatch", "Content-MD5 expected to be %s, but was %s", want, sum)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	parent, e := s.checkParentLocked(p) // the directory may have gone while we were reading
	if e != nil {
		return e
	}
	if old := s.nodes[p]; old != nil {
		if old.dir {
			return errorf(http.StatusBadRequest, "OperationNotAllowedOnDirectory", "%s is a directory", p)
		}
		s.unrefLocked(old.blob)
	}
	ctype := r.Header.Get("Content-Type")
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	nd := &node{blob: &blob{file: f.Name(), size: n, md5: sum, refs: 1}, ctype: ctype, copies: copies,
		etag: newEtag(), mtime: s.now()}
	_, name := parentOf(p)
	s.nodes[p] = nd
	parent.children[name] = true
	committed = true
	w.Header().Set("Etag", nd.etag)
	w.Header().Set("Last-Modified", nd.mtime.UTC().Format(http.TimeFormat))
	w.Header().Set("Computed-Md5", sum)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) putSnapLink(w http.ResponseWriter, r *http.Request, p string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.snapLinks {
		return errorf(http.StatusForbidden, "SnaplinksDisabledError", "Manta v2 does not support SnapLinks.")
	}
	loc := r.Header.Get("Location")
	if loc == "" {
		return errorf(http.StatusBadRequest, "LocationRequired", "Location is required")
	}
	src, e := s.cleanPath(loc)
	if e != nil {
		return e
	}
	sn := s.nodes[src]
	if sn == nil {
		return errorf(http.StatusNotFound, "SourceObjectNotFound", "%s was not found", src)
	}
	if sn.dir {
		return errorf(http.StatusBadRequest, "LinkNotObject", "%s is not an object", src)
	}
	parent, e := s.checkParentLocked(p)
	if e != nil {
		return e
	}
	if old := s.nodes[p]; old != nil {
		if old.dir {
			return errorf(http.StatusBadRequest, "OperationNotAllowedOnDirectory", "%s is a directory", p)
		}
		s.unrefLocked(old.blob)
	}
	sn.blob.refs++
	nd := *sn
	nd.mtime = s.now()
	s.nodes[p] = &nd
	_, name := parentOf(p)
	parent.children[name] = true
	w.Header().Set("Etag", nd.etag)
	w.Header().Set("Last-Modified", nd.mtime.UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) unrefLocked(b *blob) {
	b.refs--
	if b.refs == 0 {
		os.Remove(b.file)
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, p string) *apiError {
	s.mu.Lock()
	n := s.nodes[p]
	if n == nil {
		s.mu.Unlock()
		return errorf(http.StatusNotFound, "ResourceNotFound", "%s was not found", p)
	}
	if n.dir {
		defer s.mu.Unlock()
		return s.listLocked(w, r, p, n)
	}
	nd := *n
	b := *n.blob
	cut := int64(-1)
	if r.Method == http.MethodGet {
		cut, s.cutGet = s.cutGet, -1
	}
	// Open while holding the lock: a concurrent overwrite or delete may remove the file, but
	// an open descriptor keeps serving the old bytes, as Manta's storage nodes would.
	f, err := os.Open(b.file)
	s.mu.Unlock()
	if err != nil {
		return errorf(http.StatusInternalServerError, "InternalError", "%v", err)
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Content-Type", nd.ctype)
	hd.Set("Content-Length", strconv.FormatInt(b.size, 10))
	hd.Set("Content-Md5", b.md5)
	hd.Set("Etag", nd.etag)
	hd.Set("Last-Modified", nd.mtime.UTC().Format(http.TimeFormat))
	hd.Set("Durability-Level", strconv.Itoa(nd.copies))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if cut >= 0 {
		io.CopyN(w, f, cut)
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	io.Copy(w, f)
	return nil
}

// listEntry is one line of a directory listing.
type listEntry struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	MTime      string `json:"mtime"`
	Etag       string `json:"etag,omitempty"`
	Size       *int64 `json:"size,omitempty"`
	Durability int    `json:"durability,omitempty"`
}

func (s *Server) listLocked(w http.ResponseWriter, r *http.Request, p string, dir *node) *apiError {
	limit := DefaultListLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l <= 0 || l > MaxListLimit {
			return errorf(http.StatusBadRequest, "InvalidArgumentError", "limit=%s is invalid", v)
		}
		limit = l
	}
	limit = min(limit, s.pageSize)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range dir.children {
			if !yield(n) {
				return
			}
		}
	})
	w.Header().Set("Content-Type", "application/x-json-stream; type=directory")
	w.Header().Set("Result-Set-Size", strconv.Itoa(len(names)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	marker := r.URL.Query().Get("marker")
	enc := json.NewEncoder(w)
	sent := 0
	for _, name := range names {
		if sent == limit {
			break
		}
		if marker != "" && name < marker {
			continue
		}
		n := s.nodes[p+"/"+name]
		e := listEntry{Name: name, Type: "directory", MTime: n.mtime.UTC().Format("2006-01-02T15:04:05.000Z")}
		if !n.dir {
			size := n.blob.size
			e.Type, e.Etag, e.Size, e.Durability = "object", n.etag, &size, n.copies
		}
		enc.Encode(e)
		sent++
	}
	return nil
}

func (s *Server) delete(w http.ResponseWriter, p string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[p]
	switch {
	case isTop(p):
		return errorf(http.StatusBadRequest, "OperationNotAllowedOnRootDirectory", "DELETE is not allowed on %s", p)
	case n == nil:
		return errorf(http.StatusNotFound, "ResourceNotFound", "%s was not found", p)
	case n.dir && len(n.children) > 0:
		return errorf(http.StatusBadRequest, "DirectoryNotEmpty", "%s is not empty", p)
	}
	if !n.dir {
		s.unrefLocked(n.blob)
	}
	delete(s.nodes, p)
	dir, name := parentOf(p)
	delete(s.nodes[dir].children, name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	body, _ := json.Marshal(map[string]string{"code": e.code, "message": e.message})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func newEtag() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder remembers the status written.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// authenticate checks the request's HTTP Signature.
func (s *Server) authenticate(r *http.Request) *apiError {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return errorf(http.StatusUnauthorized, "AuthorizationRequired", "signature is required")
	}
	scheme, rest, _ := strings.Cut(authz, " ")
	if !strings.EqualFold(scheme, "Signature") {
		return errorf(http.StatusForbidden, "AuthorizationSchemeNotAllowed", "%s authorization is not supported", scheme)
	}
	params, err := parseSignatureParams(rest)
	if err != nil {
		return badHeader("%v", err)
	}
	keyID, alg, sig64 := params["keyid"], strings.ToLower(params["algorithm"]), params["signature"]
	if keyID == "" || alg == "" || sig64 == "" {
		return badHeader("keyId, algorithm and signature are required")
	}
	headers := []string{"date"}
	if h := strings.TrimSpace(params["headers"]); h != "" {
		headers = strings.Fields(strings.ToLower(h))
	}
	if !slices.Contains(headers, "date") && !slices.Contains(headers, "x-date") {
		return badHeader("the date header must be signed")
	}
	dateHeader := r.Header.Get("Date")
	if dateHeader == "" {
		dateHeader = r.Header.Get("X-Date")
	}
	date, err := http.ParseTime(dateHeader)
	if err != nil {
		return badHeader("date header %q is not an HTTP date", dateHeader)
	}
	s.mu.Lock()
	now := s.now()
	s.mu.Unlock()
	if skew := now.Sub(date).Abs(); skew > MaxClockSkew {
		return badHeader("clock skew of %ds was greater than %ds", int(skew.Seconds()), int(MaxClockSkew.Seconds()))
	}

	parts := strings.Split(keyID, "/")
	var login, subuser, fp string
	switch {
	case len(parts) == 4 && parts[0] == "" && parts[2] == "keys":
		login, fp = parts[1], parts[3]
	case len(parts) == 5 && parts[0] == "" && parts[3] == "keys" && parts[2] != "":
		login, subuser, fp = parts[1], parts[2], parts[4]
	default:
		return errorf(http.StatusForbidden, "InvalidKeyId", "%s is not a valid keyId", keyID)
	}
	if login == "" || fp == "" {
		return errorf(http.StatusForbidden, "InvalidKeyId", "%s is not a valid keyId", keyID)
	}
	if login != s.user {
		return errorf(http.StatusForbidden, "AccountDoesNotExist", "%s does not exist", login)
	}
	s.mu.Lock()
	key := s.keys[subuser+"/"+fp]
	s.mu.Unlock()
	if key == nil {
		return errorf(http.StatusForbidden, "KeyDoesNotExist", "%s does not exist", keyID)
	}

	var lines []string
	for _, h := range headers {
		switch h {
		case "(request-target)":
			lines = append(lines, "(request-target): "+strings.ToLower(r.Method)+" "+r.URL.RequestURI())
		case "request-line":
			lines = append(lines, r.Method+" "+r.URL.RequestURI()+" "+r.Proto)
		case "host":
			lines = append(lines, "host: "+r.Host)
		default:
			v := r.Header.Values(h)
			if len(v) == 0 {
				return badHeader("%s was not in the request", h)
			}
			lines = append(lines, h+": "+strings.Join(v, ", "))
		}
	}
	sig, err := base64.StdEncoding.DecodeString(sig64)
	if err != nil {
		return errorf(http.StatusForbidden, "InvalidSignature", "the signature is not base64")
	}
	if e := verify(key, alg, []byte(strings.Join(lines, "\n")), sig); e != nil {
		return e
	}
	return nil
}

func badHeader(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "InvalidHeader", "Invalid Signature Authorization header: "+format, args...)
}

// verify checks sig over data with key under algorithm alg ("rsa-sha256", ...).
func verify(key crypto.PublicKey, alg string, data, sig []byte) *apiError {
	keyType, hashName, _ := strings.Cut(alg, "-")
	hashes := map[string]crypto.Hash{"sha1": crypto.SHA1, "sha256": crypto.SHA256, "sha384": crypto.SHA384, "sha512": crypto.SHA512}
	h, ok := hashes[hashName]
	badAlg := errorf(http.StatusUnauthorized, "InvalidAlgorithm", "%s is not a supported algorithm for this key", alg)
	if !ok {
		return badAlg
	}
	digest := func() []byte {
		hh := h.New()
		hh.Write(data)
		return hh.Sum(nil)
	}
	good := false
	switch k := key.(type) {
	case *rsa.PublicKey:
		if keyType != "rsa" {
			return badAlg
		}
		good = rsa.VerifyPKCS1v15(k, h, digest(), sig) == nil
	case *ecdsa.PublicKey:
		if keyType != "ecdsa" {
			return badAlg
		}
		good = ecdsa.VerifyASN1(k, digest(), sig)
	case ed25519.PublicKey:
		if keyType != "ed25519" {
			return badAlg
		}
		good = ed25519.Verify(k, data, sig)
	default:
		return badAlg
	}
	if !good {
		return errorf(http.StatusForbidden, "InvalidSignature", "The signature we calculated does not match the one you sent")
	}
	return nil
}

// parseSignatureParams parses `keyId="...",algorithm="...",signature="..."` into lower-cased
// keys.
func parseSignatureParams(s string) (map[string]string, error) {
	out := map[string]string{}
	s = strings.TrimSpace(s)
	for s != "" {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, errors.New("expected key=\"value\"")
		}
		k = strings.ToLower(strings.TrimSpace(k))
		rest = strings.TrimLeft(rest, " ")
		if !strings.HasPrefix(rest, `"`) {
			return nil, fmt.Errorf("value of %s is not quoted", k)
		}
		end := strings.Index(rest[1:], `"`)
		if end < 0 {
			return nil, fmt.Errorf("value of %s is not terminated", k)
		}
		out[k] = rest[1 : 1+end]
		s = strings.TrimLeft(strings.TrimSpace(rest[2+end:]), ",")
		s = strings.TrimSpace(s)
	}
	return out, nil
}
