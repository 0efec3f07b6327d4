package consul

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
)

func TestClassifyACL(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"no error", nil, nil},
		{"403 permission denied (Consul 1.16 wording)",
			fmt.Errorf("consul: create session: %w", api.StatusError{Code: 403, Body: `Permission denied: token with AccessorID 'a1b2' lacks permission 'session:write' on "dev-1"`}),
			ErrPermissionDenied},
		{"403 permission denied (older wording)", api.StatusError{Code: 403, Body: "Permission denied"}, ErrPermissionDenied},
		{"403 through a pointer", &api.StatusError{Code: 403, Body: "rpc error making call: Permission denied"}, ErrPermissionDenied},
		{"403 unknown token", api.StatusError{Code: 403, Body: "ACL not found"}, ErrTokenNotFound},
		{"403 unknown token, rpc wording", api.StatusError{Code: 403, Body: "rpc error making call: ACL not found"}, ErrTokenNotFound},
		{"only the text of the api library", errors.New("Unexpected response code: 403 (Permission denied)"), ErrPermissionDenied},
		{"500 mentioning a denial is not an ACL answer", api.StatusError{Code: 500, Body: "Permission denied"}, nil},
		{"404", api.StatusError{Code: 404, Body: "Unknown check"}, nil},
		{"403 of something else", api.StatusError{Code: 403, Body: "forbidden by a proxy"}, nil},
		{"a network error", errors.New("dial tcp 127.0.0.1:8500: connection refused"), nil},
		{"a session ID holding 403 is no status", errors.New("consul: renew session 403a-ff: no such session"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyACL(tt.err); got != tt.want {
				t.Errorf("classifyACL(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestPermissionError_NamesTheRightAndTheRule(t *testing.T) {
	cause := fmt.Errorf("consul: create session: %w", api.StatusError{Code: 403, Body: "Permission denied"})
	err := permissionError(cause, "create sessions", Right{Resource: "session", Segment: "consul-1", Access: "write"},
		`session_prefix "" { policy = "write" }`)
	want := `consul: the token may not create sessions (ACL permission denied): grant session:write on node "consul-1" ` +
		`(session_prefix "" { policy = "write" }; see etc/consul-acl-policy.hcl)`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrPermissionDenied) {
		t.Error("not errors.Is ErrPermissionDenied")
	}
	if permissionError(errors.New("connection refused"), "create sessions", Right{}, "") != nil {
		t.Error("a network error became a permission error")
	}

	unknown := permissionError(api.StatusError{Code: 403, Body: "ACL not found"}, "create sessions", Right{}, "")
	if !errors.Is(unknown, ErrTokenNotFound) || !strings.Contains(unknown.Error(), "consul.token (CONSUL_HTTP_TOKEN)") {
		t.Errorf("unknown token: %v", unknown)
	}
	if got := (Right{Resource: "agent", Access: "read"}).String(); got != "agent:read" {
		t.Errorf("a right on anything reads %q", got)
	}
	if got := (Right{Resource: "key", Segment: "service/mysql/sync", Access: "write"}).String(); got != `key:write on key "service/mysql/sync"` {
		t.Errorf("key right reads %q", got)
	}
}

func TestPermissionErrors_FindsEachJoined(t *testing.T) {
	a := &PermissionError{What: "a", Err: ErrPermissionDenied}
	b := &PermissionError{What: "b", Err: ErrPermissionDenied}
	joined := errors.Join(a, errors.New("not one"), fmt.Errorf("wrapped: %w", b))
	got := PermissionErrors(joined)
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("PermissionErrors = %v, want [a b]", got)
	}
	if PermissionErrors(nil) != nil || PermissionErrors(errors.New("x")) != nil {
		t.Error("found permission errors where there are none")
	}
	if !permanent(a) || permanent(errors.New("no leader yet")) {
		t.Error("permanent misjudges")
	}
}
