package consul

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestNew_Options(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		wantAddr string
		wantErr  string
	}{
		{name: "defaults", opts: Options{}, wantAddr: "127.0.0.1:8500"},
		{name: "scheme in address", opts: Options{Address: "https://consul:8501"}, wantAddr: "consul:8501"},
		{name: "unknown scheme", opts: Options{Scheme: "ftp"}, wantErr: `scheme "ftp"`},
		{name: "contradicting schemes", opts: Options{Address: "http://c:1", Scheme: "https"}, wantErr: "contradicts"},
		{name: "cert without key", opts: Options{CertFile: "c.pem"}, wantErr: "certFile and keyFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Address() != tt.wantAddr {
				t.Errorf("address = %q, want %q", c.Address(), tt.wantAddr)
			}
		})
	}
}

func TestNew_TokenNotInErrors(t *testing.T) {
	// A request that fails must not echo the token.
	c, err := New(Options{Address: "127.0.0.1:1", Token: "s3cr3t-token"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = c.WaitReady(ctx)
	if err == nil {
		t.Fatal("WaitReady on a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "consul at 127.0.0.1:1 unreachable") {
		t.Errorf("error %q does not name the address", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %q leaks the token", err)
	}
}

func TestCreateSession_Validation(t *testing.T) {
	c, err := New(Options{Address: "127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    SessionOptions
		wantErr string
	}{
		{name: "ttl below consul's minimum", opts: SessionOptions{TTL: 5 * time.Second}, wantErr: "Consul accepts 10s to 24h"},
		{name: "no ttl", opts: SessionOptions{}, wantErr: "TTL 0s"},
		{name: "ttl above maximum", opts: SessionOptions{TTL: 25 * time.Hour}, wantErr: "10s to 24h"},
		{name: "lock delay too long", opts: SessionOptions{TTL: 10 * time.Second, LockDelay: 2 * time.Minute}, wantErr: "lock delay 2m0s"},
		{name: "unknown behavior", opts: SessionOptions{TTL: 10 * time.Second, Behavior: "keep"}, wantErr: `behavior "keep"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateSession(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegister_Validation(t *testing.T) {
	c, err := New(Options{Address: "127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		s       Service
		wantErr string
	}{
		{name: "no id", s: Service{Name: "mysql", CheckTTL: time.Second}, wantErr: "ID is required"},
		{name: "no name", s: Service{ID: "m1", CheckTTL: time.Second}, wantErr: "Name is required"},
		{name: "no check ttl", s: Service{ID: "m1", Name: "mysql"}, wantErr: "CheckTTL must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Register(context.Background(), tt.s)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	if err := c.UpdateTTL(context.Background(), "service:m1", "ok", ""); err == nil || !strings.Contains(err.Error(), `status "ok"`) {
		t.Errorf("UpdateTTL with a bad status: err = %v", err)
	}
}

func TestIsNotFound(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"404 from consul 1.16", api.StatusError{Code: 404, Body: `Unknown check ID "service:x"`}, true},
		{"wrapped 404", fmt.Errorf("consul: update check x: %w", api.StatusError{Code: 404}), true},
		{"500 from an older agent", api.StatusError{Code: 500, Body: `CheckID "x" does not have associated TTL`}, true},
		{"other 500", api.StatusError{Code: 500, Body: "rpc error"}, false},
		{"403", api.StatusError{Code: 403, Body: "Permission denied"}, false},
		{"network", errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isNotFound(tt.err); got != tt.want {
				t.Errorf("isNotFound(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
