package manta

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/mantatest"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/storagetest"
)

const account = "backupacct"

// keys are generated once per test binary run (RSA generation is slow) and shared read-only.
var keys = sync.OnceValue(func() map[string]crypto.Signer {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	out := map[string]crypto.Signer{"rsa": rsaKey}
	for name, c := range map[string]elliptic.Curve{"p256": elliptic.P256(), "p384": elliptic.P384(), "p521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		out[name] = k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	out["ed25519"] = ed
	return out
})

// pemFor encodes k in one of the formats a MANTA_PRIVATE_KEY may come in.
func pemFor(t *testing.T, k crypto.Signer, format string) []byte {
	t.Helper()
	var block *pem.Block
	var err error
	switch format {
	case "pkcs1":
		block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))}
	case "sec1":
		var der []byte
		der, err = x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
		block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	case "pkcs8":
		var der []byte
		der, err = x509.MarshalPKCS8PrivateKey(k)
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	case "openssh":
		block, err = ssh.MarshalPrivateKey(k, "test key")
	case "openssh-encrypted":
		block, err = ssh.MarshalPrivateKeyWithPassphrase(k, "test key", []byte("sesame"))
	default:
		t.Fatalf("unknown key format %q", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

// newPair starts a fake Manta that trusts key and returns a store on it writing below dir.
func newPair(t *testing.T, key crypto.Signer, format string, mod func(*Options)) (*Store, *mantatest.Server) {
	t.Helper()
	srv := mantatest.New(t, key.Public(), account)
	opts := Options{URL: srv.URL(), User: account, KeyPEM: pemFor(t, key, format), Dir: "snapshots/test"}
	if format == "openssh-encrypted" {
		opts.KeyPassphrase = []byte("sesame")
	}
	if mod != nil {
		mod(&opts)
	}
	st, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return st, srv
}

func put(t *testing.T, st storage.Store, name, data string) {
	t.Helper()
	if _, err := st.Put(context.Background(), name, strings.NewReader(data)); err != nil {
		t.Fatalf("Put(%q): %v", name, err)
	}
}

func read(t *testing.T, st storage.Store, name string) string {
	t.Helper()
	rc, err := st.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", name, err)
	}
	return string(b)
}

func TestConformance(t *testing.T) {
	for _, c := range []struct{ key, format string }{{"rsa", "pkcs1"}, {"p256", "openssh"}} {
		t.Run(c.key, func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) storage.Store {
				st, srv := newPair(t, keys()[c.key], c.format, nil)
				srv.SetPageSize(3) // the client asks for 1000: pages are cut short, as a capped server would
				return st
			})
		})
	}
}

func TestConformanceSmallClientPages(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		st, _ := newPair(t, keys()["p384"], "pkcs8", func(o *Options) { o.PageSize = 2 })
		return st
	})
}

func TestKeyFormatsAndAlgorithms(t *testing.T) {
	cases := []struct{ key, format, alg string }{
		{"rsa", "pkcs1", "rsa-sha256"},
		{"rsa", "pkcs8", "rsa-sha256"},
		{"rsa", "openssh", "rsa-sha256"},
		{"rsa", "openssh-encrypted", "rsa-sha256"},
		{"p256", "sec1", "ecdsa-sha256"},
		{"p384", "openssh", "ecdsa-sha384"},
		{"p521", "pkcs8", "ecdsa-sha512"},
		{"ed25519", "openssh", "ed25519-sha512"},
		{"ed25519", "pkcs8", "ed25519-sha512"},
	}
	for _, c := range cases {
		t.Run(c.key+"-"+c.format, func(t *testing.T) {
			st, srv := newPair(t, keys()[c.key], c.format, nil)
			put(t, st, "k", "payload")
			if got := read(t, st, "k"); got != "payload" {
				t.Errorf("read back %q", got)
			}
			reqs := srv.Requests()
			if a := reqs[0].Header.Get("Authorization"); !strings.Contains(a, `algorithm="`+c.alg+`"`) || !strings.Contains(a, `headers="date"`) {
				t.Errorf("Authorization = %s, want algorithm %s over date", a, c.alg)
			}
		})
	}
}

func TestEncryptedKeyWithoutPassphrase(t *testing.T) {
	_, err := New(Options{URL: "https://manta.example", User: account, KeyPEM: pemFor(t, keys()["rsa"], "openssh-encrypted")})
	if err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("New = %v, want an error about the passphrase", err)
	}
}

func TestKeyIDForms(t *testing.T) {
	k := keys()["rsa"]
	pub, _ := ssh.NewPublicKey(k.Public())
	md5fp, shafp := ssh.FingerprintLegacyMD5(pub), ssh.FingerprintSHA256(pub)
	for _, id := range []string{"", md5fp, "MD5:" + md5fp, strings.ToUpper(md5fp), shafp} {
		t.Run(id, func(t *testing.T) {
			st, srv := newPair(t, k, "pkcs1", func(o *Options) { o.KeyID = id })
			put(t, st, "x", "y")
			want := fmt.Sprintf(`keyId="/%s/keys/%s"`, account, md5fp)
			if a := srv.Requests()[0].Header.Get("Authorization"); !strings.Contains(a, want) {
				t.Errorf("Authorization = %s, want %s", a, want)
			}
		})
	}
	other, _ := ssh.NewPublicKey(keys()["p256"].Public())
	for _, id := range []string{ssh.FingerprintLegacyMD5(other), ssh.FingerprintSHA256(other)} {
		_, err := New(Options{URL: "https://manta.example", User: account, KeyPEM: pemFor(t, k, "pkcs1"), KeyID: id})
		if err == nil || !strings.Contains(err.Error(), md5fp) || !strings.Contains(err.Error(), "does not match") {
			t.Errorf("New with key id %s of another key = %v, want a mismatch naming %s", id, err, md5fp)
		}
	}
}

func TestWrongKeyIsRejectedClearly(t *testing.T) {
	srv := mantatest.New(t, keys()["rsa"].Public(), account)
	st, err := New(Options{URL: srv.URL(), User: account, KeyPEM: pemFor(t, keys()["p256"], "sec1"), Dir: "s"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Put(context.Background(), "x", strings.NewReader("data"))
	var merr *Error
	if !errors.As(err, &merr) || merr.Code != "KeyDoesNotExist" || !merr.IsAuth() {
		t.Fatalf("Put with an unregistered key = %v, want KeyDoesNotExist", err)
	}
	if errors.Is(err, storage.ErrNotFound) {
		t.Error("an auth failure must not look like ErrNotFound")
	}
	t.Log(err)
	if msg := err.Error(); !strings.HasPrefix(msg, "manta: put /"+account+"/stor/s/x: mkdir /"+account+"/stor/s: KeyDoesNotExist") ||
		!strings.Contains(msg, "registered with the account") {
		t.Errorf("error = %q, want the path, Manta's code and a hint", msg)
	}
	if _, err := st.List(context.Background(), ""); !errors.As(err, &merr) || merr.Code != "KeyDoesNotExist" {
		t.Errorf("List with an unregistered key = %v, want KeyDoesNotExist (not an empty listing)", err)
	}
}

func TestStaleDateIsRejected(t *testing.T) {
	st, _ := newPair(t, keys()["rsa"], "pkcs1", func(o *Options) {
		o.Now = func() time.Time { return time.Now().Add(-6 * time.Minute) }
	})
	_, err := st.Stat(context.Background(), "x")
	var merr *Error
	if !errors.As(err, &merr) || merr.Code != "InvalidHeader" || !strings.Contains(err.Error(), "clock skew") {
		t.Fatalf("Stat with a stale Date = %v, want InvalidHeader about clock skew", err)
	}
	if errors.Is(err, storage.ErrNotFound) {
		t.Error("a stale Date must not look like ErrNotFound")
	}
	t.Log(err)
}

func TestSubuserAndRole(t *testing.T) {
	k := keys()["p256"]
	srv := mantatest.New(t, nil, account)
	fp := srv.AddKey("operator", k.Public())
	st, err := New(Options{URL: srv.URL(), User: account, Subuser: "operator", Role: "backups", KeyPEM: pemFor(t, k, "sec1"), Dir: "/" + account + "/stor/snaps"})
	if err != nil {
		t.Fatal(err)
	}
	put(t, st, "a", "b")
	r := srv.Requests()[0]
	if a := r.Header.Get("Authorization"); !strings.Contains(a, `keyId="/`+account+`/operator/keys/`+fp+`"`) {
		t.Errorf("Authorization = %s, want a subuser keyId", a)
	}
	if r.Header.Get("Role") != "backups" {
		t.Errorf("Role header = %q", r.Header.Get("Role"))
	}
}

func TestPutRequests(t *testing.T) {
	st, srv := newPair(t, keys()["rsa"], "pkcs1", func(o *Options) { o.Durability = 3; o.MaxObjectSize = 100 << 30 })
	put(t, st, "2024/01/full.xb.zst", "backup bytes")
	put(t, st, "2024/01/inc.xb.zst", "more bytes")
	var got []string
	for _, r := range srv.Requests() {
		got = append(got, r.Method+" "+r.Path+" "+r.Header.Get("Content-Type"))
	}
	d := "/" + account + "/stor/snapshots"
	want := []string{
		"PUT " + d + " application/json; type=directory",
		"PUT " + d + "/test application/json; type=directory",
		"PUT " + d + "/test/2024 application/json; type=directory",
		"PUT " + d + "/test/2024/01 application/json; type=directory",
		"PUT " + d + "/test/2024/01/full.xb.zst application/octet-stream",
		"PUT " + d + "/test/2024/01/inc.xb.zst application/octet-stream", // directories cached
	}
	if !slices.Equal(got, want) {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	obj := srv.Requests()[4]
	if !obj.Chunked || obj.Header.Get("Durability-Level") != "3" || obj.Header.Get("Max-Content-Length") != fmt.Sprint(100<<30) {
		t.Errorf("object PUT: chunked=%v durability=%q max=%q", obj.Chunked, obj.Header.Get("Durability-Level"), obj.Header.Get("Max-Content-Length"))
	}
	if b, _ := srv.ReadObject(d + "/test/2024/01/full.xb.zst"); string(b) != "backup bytes" {
		t.Errorf("stored %q", b)
	}
}

func TestListPaginates(t *testing.T) {
	st, srv := newPair(t, keys()["rsa"], "pkcs1", func(o *Options) { o.PageSize = 3 })
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("day/%02d", i))
	}
	for i := range 7 {
		want = append(want, fmt.Sprintf("day/zz/%d", i))
	}
	for _, n := range want {
		put(t, st, n, n)
	}
	objs, err := st.List(context.Background(), "day/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.Name)
		if o.Size != int64(len(o.Name)) || o.ModTime.IsZero() {
			t.Errorf("%s: size %d mtime %v", o.Name, o.Size, o.ModTime)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
	markers := 0
	for _, r := range srv.Requests() {
		if r.Method == http.MethodGet && r.Query.Get("marker") != "" {
			markers++
			if r.Query.Get("limit") != "3" {
				t.Errorf("listing limit = %q, want 3", r.Query.Get("limit"))
			}
		}
	}
	if markers < 5 {
		t.Errorf("only %d continued pages for 11 entries in pages of 3", markers)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	notFoundNorOK := func(t *testing.T, what string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: error = %v, want a failure that is not ErrNotFound", what, err)
		}
		t.Logf("%s: %v", what, err)
	}

	t.Run("503 on the object PUT", func(t *testing.T) {
		st, srv := newPair(t, keys()["rsa"], "pkcs1", nil)
		put(t, st, "warm", "dirs exist now")
		srv.FailNext(1, http.MethodPut)
		_, err := st.Put(ctx, "x", bytes.NewReader(make([]byte, 1<<20)))
		notFoundNorOK(t, "Put", err)
		var merr *Error
		if !errors.As(err, &merr) || !merr.Temporary() {
			t.Errorf("Put error %v is not a temporary *Error", err)
		}
		if _, err := st.Stat(ctx, "x"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after failed Put = %v, want ErrNotFound", err)
		}
	})

	t.Run("connection cut during PUT keeps the old version", func(t *testing.T) {
		st, srv := newPair(t, keys()["rsa"], "pkcs1", nil)
		put(t, st, "x", "old version")
		srv.CutNextPut(1 << 20)
		_, err := st.Put(ctx, "x", bytes.NewReader(make([]byte, 4<<20)))
		notFoundNorOK(t, "Put", err)
		if got := read(t, st, "x"); got != "old version" {
			t.Errorf("after a cut Put, x = %q", got)
		}
		for _, p := range srv.Paths() {
			if !strings.HasSuffix(p, "/") && !strings.HasSuffix(p, "/x") {
				t.Errorf("left behind: %s", p)
			}
		}
	})

	t.Run("connection cut during GET", func(t *testing.T) {
		st, srv := newPair(t, keys()["rsa"], "pkcs1", nil)
		put(t, st, "x", strings.Repeat("z", 100_000))
		srv.CutNextGet(1000)
		rc, err := st.Get(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		_, err = io.ReadAll(rc)
		notFoundNorOK(t, "reading a cut GET", err)
		if err != nil && !strings.Contains(err.Error(), "manta: get /"+account+"/stor/snapshots/test/x") {
			t.Errorf("read error %q does not name the object", err)
		}
	})

	t.Run("503 while listing", func(t *testing.T) {
		st, srv := newPair(t, keys()["rsa"], "pkcs1", func(o *Options) { o.PageSize = 2 })
		for i := range 5 {
			put(t, st, fmt.Sprint(i), "x")
		}
		srv.FailNext(1, http.MethodGet)
		_, err := st.List(ctx, "")
		notFoundNorOK(t, "List", err)
	})

	t.Run("503 on Stat and Delete", func(t *testing.T) {
		st, srv := newPair(t, keys()["rsa"], "pkcs1", nil)
		put(t, st, "x", "x")
		srv.FailNext(1)
		_, err := st.Stat(ctx, "x")
		notFoundNorOK(t, "Stat", err)
		srv.FailNext(1)
		notFoundNorOK(t, "Delete", st.Delete(ctx, "x"))
		if got := read(t, st, "x"); got != "x" {
			t.Errorf("x = %q after a failed Delete", got)
		}
	})
}

func TestPutRecreatesARemovedDirectory(t *testing.T) {
	st, srv := newPair(t, keys()["rsa"], "pkcs1", nil)
	ctx := context.Background()
	put(t, st, "d/x", "1")
	if err := st.Delete(ctx, "d/x"); err != nil {
		t.Fatal(err)
	}
	// Someone removes the (now empty) directory behind the store's back.
	resp, err := st.do(ctx, http.MethodDelete, st.dir+"/d", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	put(t, st, "d/y", "2")
	if got := read(t, st, "d/y"); got != "2" {
		t.Errorf("d/y = %q", got)
	}
	if !slices.Contains(srv.Paths(), st.dir+"/d/y") {
		t.Errorf("paths = %q", srv.Paths())
	}
}

func TestStatOfADirectoryIsNotFound(t *testing.T) {
	st, _ := newPair(t, keys()["rsa"], "pkcs1", nil)
	put(t, st, "d/x", "1")
	if _, err := st.Stat(context.Background(), "d"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of a directory = %v, want ErrNotFound", err)
	}
	if _, err := st.Get(context.Background(), "d"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get of a directory = %v, want ErrNotFound", err)
	}
}

func TestNewValidates(t *testing.T) {
	pemBytes := pemFor(t, keys()["rsa"], "pkcs1")
	cases := map[string]Options{
		"no URL":          {User: account, KeyPEM: pemBytes},
		"bad scheme":      {URL: "ftp://x", User: account, KeyPEM: pemBytes},
		"foreign dir":     {URL: "https://x", User: account, KeyPEM: pemBytes, Dir: "/someoneelse/stor/x"},
		"dotdot dir":      {URL: "https://x", User: account, KeyPEM: pemBytes, Dir: "a/../b"},
		"no key":          {URL: "https://x", User: account},
		"garbage key":     {URL: "https://x", User: account, KeyPEM: []byte("not a key")},
		"durability":      {URL: "https://x", User: account, KeyPEM: pemBytes, Durability: 10},
		"missing keyfile": {URL: "https://x", User: account, KeyPath: "/nonexistent/id_rsa"},
	}
	for name, o := range cases {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		} else if !strings.HasPrefix(err.Error(), "manta: ") {
			t.Errorf("%s: error %q lacks the manta: prefix", name, err)
		}
	}
}

func TestStringHasNoSecrets(t *testing.T) {
	k := keys()["rsa"]
	st, _ := newPair(t, k, "pkcs1", nil)
	s := st.String()
	if !strings.HasPrefix(s, "manta://127.0.0.1:") || !strings.HasSuffix(s, "/"+account+"/stor/snapshots/test") {
		t.Errorf("String() = %q", s)
	}
	if strings.Contains(s, "PRIVATE") || strings.Contains(s, "keys") {
		t.Errorf("String() = %q leaks key material", s)
	}
}

func TestPutRemovesAnObjectWhoseMD5Differs(t *testing.T) {
	st, srv := newPair(t, keys()["rsa"], "pkcs1", nil)
	// A proxy that reports a different Computed-MD5, as if bytes were altered on the way.
	target, _ := url.Parse(srv.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Header.Get("Computed-Md5") != "" {
			r.Header.Set("Computed-Md5", "AAAAAAAAAAAAAAAAAAAAAA==")
		}
		return nil
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	st.base, _ = url.Parse(front.URL)

	_, err := st.Put(context.Background(), "x", strings.NewReader("payload"))
	if err == nil || !strings.Contains(err.Error(), "Manta computed MD5 AAAAAAAAAAAAAAAAAAAAAA==") {
		t.Fatalf("Put = %v, want an MD5 mismatch", err)
	}
	if _, err := st.Stat(context.Background(), "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after a mismatched Put = %v, want ErrNotFound", err)
	}
}

func TestGetChecksContentMD5(t *testing.T) {
	d := &downloadBody{rc: io.NopCloser(strings.NewReader("hello world")), md5: md5.New(), want: "AAAAAAAAAAAAAAAAAAAAAA==", path: "/a/stor/x"}
	if _, err := io.ReadAll(d); err == nil || !strings.Contains(err.Error(), "manta: get /a/stor/x: content MD5 is XrY7u+Ae7tCTyyK7j1rNww==") {
		t.Errorf("reading a body with the wrong MD5 = %v", err)
	}
	d = &downloadBody{rc: io.NopCloser(strings.NewReader("hello world")), md5: md5.New(), want: "XrY7u+Ae7tCTyyK7j1rNww==", path: "/a/stor/x"}
	if b, err := io.ReadAll(d); err != nil || string(b) != "hello world" {
		t.Errorf("reading a good body = %q, %v", b, err)
	}
}

func TestFlattenedKeyFromEnvironment(t *testing.T) {
	k := keys()["rsa"]
	pemText := string(pemFor(t, k, "pkcs1"))
	for name, flat := range map[string]string{
		"hash":              strings.ReplaceAll(pemText, "\n", "#"),
		"backslash-n":       strings.ReplaceAll(pemText, "\n", `\n`),
		"untouched newline": pemText,
	} {
		t.Run(name, func(t *testing.T) {
			srv := mantatest.New(t, k.Public(), account)
			st, err := New(Options{URL: srv.URL(), User: account, KeyPEM: []byte(flat)})
			if err != nil {
				t.Fatal(err)
			}
			put(t, st, "x", "y")
		})
	}
}
