package mantatest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mysqlpilot/mysqlpilot/internal/storage/mantatest"
)

const user = "acct"

// client signs raw requests the way Manta's documentation shows, with knobs to get it wrong.
type client struct {
	t       *testing.T
	srv     *mantatest.Server
	key     *ecdsa.PrivateKey
	keyID   string
	headers string // signed headers; "" means the parameter is left out (date only)
	now     func() time.Time
}

func newServer(t *testing.T) (*mantatest.Server, *client) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	srv := mantatest.New(t, pub, user) // an ssh.PublicKey works as well as a crypto one
	return srv, &client{t: t, srv: srv, key: key, keyID: "/" + user + "/keys/" + ssh.FingerprintLegacyMD5(pub), now: time.Now}
}

// do sends a request and returns the status and body.
func (c *client) do(method, path string, hdr map[string]string, body io.Reader) (int, string, http.Header) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.srv.URL()+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if _, ok := hdr["Authorization"]; !ok {
		date := c.now().UTC().Format(http.TimeFormat)
		req.Header.Set("Date", date)
		signing := "date: " + date
		params := ""
		if c.headers != "" {
			params = `,headers="` + c.headers + `"`
			signing = "(request-target): " + strings.ToLower(method) + " " + req.URL.RequestURI() + "\n" + signing
		}
		d := sha256.Sum256([]byte(signing))
		sig, err := ecdsa.SignASN1(rand.Reader, c.key, d[:])
		if err != nil {
			c.t.Fatal(err)
		}
		req.Header.Set("Authorization", fmt.Sprintf(`Signature keyId="%s",algorithm="ecdsa-sha256"%s,signature="%s"`,
			c.keyID, params, base64.StdEncoding.EncodeToString(sig)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// wantError checks for a Manta JSON error with code.
func wantError(t *testing.T, status int, body string, wantStatus int, wantCode string) {
	t.Helper()
	var e struct{ Code, Message string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || status != wantStatus || e.Code != wantCode {
		t.Errorf("got %d %s, want %d with code %s", status, body, wantStatus, wantCode)
	}
}

var dirType = map[string]string{"Content-Type": "application/json; type=directory"}

func TestAuthentication(t *testing.T) {
	srv, c := newServer(t)
	stor := "/" + user + "/stor"

	if st, _, _ := c.do("GET", stor, nil, nil); st != http.StatusOK {
		t.Fatalf("signed GET = %d", st)
	}
	c.headers = "(request-target) date"
	if st, body, _ := c.do("GET", stor, nil, nil); st != http.StatusOK {
		t.Errorf("GET signed over (request-target) and date = %d %s", st, body)
	}
	c.headers = ""

	st, body, _ := c.do("GET", stor, map[string]string{"Authorization": ""}, nil)
	wantError(t, st, body, http.StatusUnauthorized, "AuthorizationRequired")

	st, body, _ = c.do("GET", stor, map[string]string{"Authorization": "Basic dXNlcjpwdw=="}, nil)
	wantError(t, st, body, http.StatusForbidden, "AuthorizationSchemeNotAllowed")

	st, body, _ = c.do("GET", stor, map[string]string{"Authorization": `Signature keyId="/acct/keys/x",algorithm="ecdsa-sha256",signature="AAAA"`}, nil)
	wantError(t, st, body, http.StatusBadRequest, "InvalidHeader") // no Date

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := c.key
	c.key = other
	st, body, _ = c.do("GET", stor, nil, nil)
	wantError(t, st, body, http.StatusForbidden, "InvalidSignature")
	c.key = good

	keyID := c.keyID
	c.keyID = "/" + user + "/keys/00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"
	st, body, _ = c.do("GET", stor, nil, nil)
	wantError(t, st, body, http.StatusForbidden, "KeyDoesNotExist")
	c.keyID = "/someoneelse/keys/" + strings.TrimPrefix(keyID, "/"+user+"/keys/")
	st, body, _ = c.do("GET", stor, nil, nil)
	wantError(t, st, body, http.StatusForbidden, "AccountDoesNotExist")
	c.keyID = "nonsense"
	st, body, _ = c.do("GET", stor, nil, nil)
	wantError(t, st, body, http.StatusForbidden, "InvalidKeyId")
	c.keyID = keyID

	c.now = func() time.Time { return time.Now().Add(-301 * time.Second) }
	st, body, _ = c.do("GET", stor, nil, nil)
	wantError(t, st, body, http.StatusBadRequest, "InvalidHeader")
	if !strings.Contains(body, "clock skew") {
		t.Errorf("stale Date answer %s does not say clock skew", body)
	}
	srv.SetNow(func() time.Time { return time.Now().Add(-301 * time.Second) })
	if st, body, _ := c.do("GET", stor, nil, nil); st != http.StatusOK {
		t.Errorf("GET with the server's clock equally late = %d %s", st, body)
	}
	srv.SetNow(time.Now)
	c.now = time.Now

	st, body, _ = c.do("GET", "/someoneelse/stor", nil, nil)
	wantError(t, st, body, http.StatusForbidden, "AuthorizationFailed")
}

func TestSubuserKeys(t *testing.T) {
	srv, c := newServer(t)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fp := srv.AddKey("ops", k.Public())
	c.key, c.keyID = k, "/"+user+"/ops/keys/"+fp
	if st, body, _ := c.do("GET", "/"+user+"/stor", nil, nil); st != http.StatusOK {
		t.Errorf("subuser GET = %d %s", st, body)
	}
	c.keyID = "/" + user + "/keys/" + fp // the account itself does not have that key
	st, body, _ := c.do("GET", "/"+user+"/stor", nil, nil)
	wantError(t, st, body, http.StatusForbidden, "KeyDoesNotExist")
}

func TestDirectoriesAndObjects(t *testing.T) {
	srv, c := newServer(t)
	d := "/" + user + "/stor"

	st, body, _ := c.do("PUT", d+"/a/b", dirType, nil)
	wantError(t, st, body, http.StatusNotFound, "DirectoryDoesNotExist")
	st, body, _ = c.do("PUT", d+"/a/b/obj", nil, strings.NewReader("x"))
	wantError(t, st, body, http.StatusNotFound, "DirectoryDoesNotExist")
	for _, p := range []string{d + "/a", d + "/a", d + "/a/b"} { // idempotent
		if st, body, _ := c.do("PUT", p, dirType, nil); st != http.StatusNoContent {
			t.Fatalf("PUT dir %s = %d %s", p, st, body)
		}
	}
	st, _, h := c.do("PUT", d+"/a/b/obj", map[string]string{"Durability-Level": "3"}, io.MultiReader(strings.NewReader("hello "), strings.NewReader("world")))
	if st != http.StatusNoContent || h.Get("Computed-Md5") != "XrY7u+Ae7tCTyyK7j1rNww==" || h.Get("Etag") == "" {
		t.Fatalf("PUT object = %d, headers %v", st, h)
	}
	if r := srv.Requests(); !r[len(r)-1].Chunked {
		t.Error("a body of unknown length was not sent chunked")
	}
	st, body, h = c.do("GET", d+"/a/b/obj", nil, nil)
	if st != http.StatusOK || body != "hello world" || h.Get("Content-Md5") != "XrY7u+Ae7tCTyyK7j1rNww==" || h.Get("Durability-Level") != "3" {
		t.Errorf("GET object = %d %q %v", st, body, h)
	}
	st, _, h = c.do("HEAD", d+"/a/b/obj", nil, nil)
	if st != http.StatusOK || h.Get("Content-Length") != "11" {
		t.Errorf("HEAD object = %d %v", st, h)
	}
	st, _, h = c.do("HEAD", d+"/a", nil, nil)
	if st != http.StatusOK || h.Get("Content-Type") != "application/x-json-stream; type=directory" {
		t.Errorf("HEAD directory = %d %v", st, h)
	}

	st, body, _ = c.do("PUT", d+"/a/b/obj/x", nil, strings.NewReader("x"))
	wantError(t, st, body, http.StatusBadRequest, "ParentNotDirectory")
	st, body, _ = c.do("PUT", d+"/a/b", nil, strings.NewReader("x"))
	wantError(t, st, body, http.StatusBadRequest, "OperationNotAllowedOnDirectory")
	st, body, _ = c.do("DELETE", d+"/a", nil, nil)
	wantError(t, st, body, http.StatusBadRequest, "DirectoryNotEmpty")
	st, body, _ = c.do("DELETE", d, nil, nil)
	wantError(t, st, body, http.StatusBadRequest, "OperationNotAllowedOnRootDirectory")
	st, body, _ = c.do("PUT", d+"/a/bad", map[string]string{"Durability-Level": "0"}, strings.NewReader("x"))
	wantError(t, st, body, http.StatusBadRequest, "InvalidDurabilityLevel")
	st, body, _ = c.do("PUT", d+"/a/bad", map[string]string{"Content-MD5": "XrY7u+Ae7tCTyyK7j1rNww=="}, strings.NewReader("other"))
	wantError(t, st, body, http.StatusBadRequest, "ContentMD5Mismatch")
	st, body, _ = c.do("PUT", d+"/a/big", map[string]string{"Max-Content-Length": "4"}, io.MultiReader(strings.NewReader("12345")))
	wantError(t, st, body, http.StatusRequestEntityTooLarge, "MaxContentLengthExceeded")

	for _, p := range []string{d + "/a/b/obj", d + "/a/b", d + "/a"} {
		if st, body, _ := c.do("DELETE", p, nil, nil); st != http.StatusNoContent {
			t.Errorf("DELETE %s = %d %s", p, st, body)
		}
	}
	st, body, _ = c.do("GET", d+"/a", nil, nil)
	wantError(t, st, body, http.StatusNotFound, "ResourceNotFound")
	st, _, _ = c.do("HEAD", d+"/a", nil, nil)
	if st != http.StatusNotFound {
		t.Errorf("HEAD of a deleted directory = %d", st)
	}
	if p := srv.Paths(); len(p) != 0 {
		t.Errorf("Paths() = %q, want none", p)
	}
}

func TestSnapLinks(t *testing.T) {
	srv, c := newServer(t)
	d := "/" + user + "/stor"
	link := map[string]string{"Content-Type": "application/json; type=link", "Location": d + "/src"}
	c.do("PUT", d+"/src", nil, strings.NewReader("original"))
	if st, body, _ := c.do("PUT", d+"/dst", link, nil); st != http.StatusNoContent {
		t.Fatalf("PUT link = %d %s", st, body)
	}
	c.do("PUT", d+"/src", nil, strings.NewReader("replaced"))
	c.do("DELETE", d+"/src", nil, nil)
	if st, body, _ := c.do("GET", d+"/dst", nil, nil); st != http.StatusOK || body != "original" {
		t.Errorf("link after its source was replaced and deleted = %d %q", st, body)
	}
	st, body, _ := c.do("PUT", d+"/dst2", link, nil)
	wantError(t, st, body, http.StatusNotFound, "SourceObjectNotFound")

	srv.SetSnapLinks(false)
	link["Location"] = d + "/dst"
	st, body, _ = c.do("PUT", d+"/dst3", link, nil)
	wantError(t, st, body, http.StatusForbidden, "SnaplinksDisabledError")
}

func TestListingPages(t *testing.T) {
	srv, c := newServer(t)
	d := "/" + user + "/stor/l"
	c.do("PUT", d, dirType, nil)
	names := []string{"e", "a", "d", "c", "b"}
	for _, n := range names {
		c.do("PUT", d+"/"+n, nil, strings.NewReader(n+n))
	}
	c.do("PUT", d+"/sub", dirType, nil)
	page := func(q string) []string {
		t.Helper()
		st, body, h := c.do("GET", d+q, nil, nil)
		if st != http.StatusOK || h.Get("Result-Set-Size") != "6" {
			t.Fatalf("GET %s = %d %v", q, st, h)
		}
		var out []string
		dec := json.NewDecoder(strings.NewReader(body))
		for dec.More() {
			var e struct {
				Name, Type string
				Size       *int64
			}
			if err := dec.Decode(&e); err != nil {
				t.Fatal(err)
			}
			if (e.Type == "object") != (e.Size != nil) {
				t.Errorf("entry %+v: size present iff object", e)
			}
			out = append(out, e.Name+":"+e.Type)
		}
		return out
	}
	if got := page("?limit=2"); !slices.Equal(got, []string{"a:object", "b:object"}) {
		t.Errorf("first page = %q", got)
	}
	if got := page("?limit=3&marker=b"); !slices.Equal(got, []string{"b:object", "c:object", "d:object"}) {
		t.Errorf("page from marker b (inclusive) = %q", got)
	}
	if got := page("?marker=d"); !slices.Equal(got, []string{"d:object", "e:object", "sub:directory"}) {
		t.Errorf("last page = %q", got)
	}
	srv.SetPageSize(1)
	if got := page("?limit=1000"); len(got) != 1 {
		t.Errorf("with page size 1, got %q", got)
	}
	st, body, _ := c.do("GET", d+"?limit=1025", nil, nil)
	wantError(t, st, body, http.StatusBadRequest, "InvalidArgumentError")
}

func TestFaultInjection(t *testing.T) {
	srv, c := newServer(t)
	d := "/" + user + "/stor"
	srv.FailNext(2, "PUT")
	if st, _, _ := c.do("GET", d, nil, nil); st != http.StatusOK {
		t.Errorf("GET while PUTs fail = %d", st)
	}
	for range 2 {
		st, body, _ := c.do("PUT", d+"/x", nil, strings.NewReader("x"))
		wantError(t, st, body, http.StatusServiceUnavailable, "ServiceUnavailable")
	}
	if st, _, _ := c.do("PUT", d+"/x", nil, strings.NewReader("kept")); st != http.StatusNoContent {
		t.Errorf("third PUT = %d", st)
	}

	srv.CutNextPut(3)
	req, _ := http.NewRequest("PUT", srv.URL()+d+"/x", strings.NewReader("new content"))
	sign(t, c, req)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("cut PUT answered %d", resp.StatusCode)
	}
	if b, err := srv.ReadObject(d + "/x"); err != nil || string(b) != "kept" {
		t.Errorf("after a cut PUT, object = %q, %v", b, err)
	}

	srv.CutNextGet(2)
	req, _ = http.NewRequest("GET", srv.URL()+d+"/x", nil)
	sign(t, c, req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || string(b) != "ke" {
		t.Errorf("cut GET read %q, %v; want 2 bytes and an error", b, err)
	}
	var statuses []int
	for _, r := range srv.Requests() {
		statuses = append(statuses, r.Status)
	}
	if want := []int{200, 503, 503, 204, 0, 200}; !slices.Equal(statuses, want) {
		t.Errorf("recorded statuses %v, want %v", statuses, want)
	}
}

// sign adds Date and Authorization to req for c's key.
func sign(t *testing.T, c *client, req *http.Request) {
	t.Helper()
	date := time.Now().UTC().Format(http.TimeFormat)
	req.Header.Set("Date", date)
	d := sha256.Sum256([]byte("date: " + date))
	sig, err := c.key.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", fmt.Sprintf(`Signature keyId="%s",algorithm="ecdsa-sha256",headers="date",signature="%s"`,
		c.keyID, base64.StdEncoding.EncodeToString(sig)))
}
