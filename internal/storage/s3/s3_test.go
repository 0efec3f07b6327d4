package s3

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
)

func TestNewValidates(t *testing.T) {
	cases := map[string]Options{
		"no endpoint":     {Bucket: "b"},
		"no bucket":       {Endpoint: "localhost:9000"},
		"bad scheme":      {Endpoint: "ftp://localhost", Bucket: "b"},
		"path in URL":     {Endpoint: "http://localhost/x", Bucket: "b"},
		"small parts":     {Endpoint: "localhost:9000", Bucket: "b", PartSize: 1 << 20},
		"bad prefix":      {Endpoint: "localhost:9000", Bucket: "b", Prefix: "a//b"},
		"absolute prefix": {Endpoint: "localhost:9000", Bucket: "b", Prefix: "/a"},
	}
	for name, o := range cases {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		} else if !strings.HasPrefix(err.Error(), "s3: ") {
			t.Errorf("%s: error %q lacks the s3: prefix", name, err)
		}
	}
}

func TestDefaultsAndString(t *testing.T) {
	s, err := New(Options{Endpoint: "https://s3.example.com", Bucket: "backups", Prefix: "db1",
		AccessKey: "AKIAEXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG"})
	if err != nil {
		t.Fatal(err)
	}
	if s.partSize != DefaultPartSize || s.prefix != "db1/" || s.region != "us-east-1" {
		t.Errorf("partSize %d prefix %q region %q", s.partSize, s.prefix, s.region)
	}
	str := s.String()
	if str != "s3://backups/db1/ at https://s3.example.com" {
		t.Errorf("String() = %q", str)
	}
	if strings.Contains(str, "AKIA") || strings.Contains(str, "wJalr") {
		t.Errorf("String() = %q leaks a credential", str)
	}
	plain, err := New(Options{Endpoint: "127.0.0.1:7070", Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := plain.String(); got != "s3://b/ at http://127.0.0.1:7070" {
		t.Errorf("String() = %q", got)
	}
}

func TestErrorMapping(t *testing.T) {
	s, err := New(Options{Endpoint: "127.0.0.1:7070", Bucket: "b", Prefix: "p"})
	if err != nil {
		t.Fatal(err)
	}
	noKey := minio.ErrorResponse{Code: "NoSuchKey", Message: "The specified key does not exist.", StatusCode: http.StatusNotFound}
	err = s.fail("get", "x/y", noKey)
	if !errors.Is(err, storage.ErrNotFound) || !strings.HasPrefix(err.Error(), "s3: get s3://b/p/x/y: ") {
		t.Errorf("NoSuchKey -> %v", err)
	}
	var er minio.ErrorResponse
	if !errors.As(err, &er) || er.Code != "NoSuchKey" {
		t.Errorf("the minio error is not kept in %v", err)
	}
	err = s.fail("put", "x", minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: http.StatusNotFound})
	if errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "bucket b does not exist") {
		t.Errorf("NoSuchBucket -> %v", err)
	}
	err = s.fail("put", "x", minio.ErrorResponse{Code: "SignatureDoesNotMatch", StatusCode: http.StatusForbidden})
	if !strings.Contains(err.Error(), "check the access key") {
		t.Errorf("SignatureDoesNotMatch -> %v", err)
	}
}
