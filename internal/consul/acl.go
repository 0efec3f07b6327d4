package consul

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/consul/api"
)

// ACL sentinels, for errors.Is. Consul answers both with HTTP 403.
var (
	// ErrPermissionDenied means the token lacks a right the request needs ("Permission
	// denied").
	ErrPermissionDenied = errors.New("ACL permission denied")

	// ErrTokenNotFound means Consul does not know the token at all ("ACL not found"): a typo,
	// a deleted token, or one of another cluster.
	ErrTokenNotFound = errors.New("ACL token not found")
)

// PolicyFile is where the README's minimal ACL policy lives (the grant hints point there).
const PolicyFile = "etc/consul-acl-policy.hcl"

// classifyACL returns ErrPermissionDenied or ErrTokenNotFound when err is Consul refusing a
// request for its token, and nil otherwise.
func classifyACL(err error) error {
	if err == nil {
		return nil
	}
	code, body := statusCode(err)
	text := body
	if code == 0 {
		// consul/api formats some refusals itself ("Unexpected response code: 403 (...)").
		text = err.Error()
		if !strings.Contains(text, "response code: 403") {
			return nil
		}
	} else if code != http.StatusForbidden {
		return nil
	}
	switch {
	case strings.Contains(text, "ACL not found"):
		return ErrTokenNotFound
	case strings.Contains(strings.ToLower(text), "permission denied"):
		return ErrPermissionDenied
	}
	return nil
}

// Right is one ACL right, as Consul's policy language names it.
type Right struct {
	Resource string // "key", "session", "service", "node" or "agent"
	Segment  string // the key, node or service name it applies to ("" for any)
	Access   string // "read" or "write"
}

// String reads like `session:write on node "consul-1"`.
func (r Right) String() string {
	if r.Segment == "" {
		return r.Resource + ":" + r.Access
	}
	on := map[string]string{"key": "key", "session": "node", "service": "service", "node": "node", "agent": "agent"}[r.Resource]
	return fmt.Sprintf("%s:%s on %s %q", r.Resource, r.Access, on, r.Segment)
}

// PermissionError is a right the token lacks: what mysqlpilot could not do, the right, and the
// policy rule that grants it. Its text never holds the token.
type PermissionError struct {
	What  string // e.g. `create sessions`
	Right Right
	Grant string // an HCL rule, e.g. `session_prefix "" { policy = "write" }`
	Err   error  // wraps ErrPermissionDenied or ErrTokenNotFound
}

func (e *PermissionError) Error() string {
	if errors.Is(e.Err, ErrTokenNotFound) {
		return "consul: the token is unknown to Consul (ACL not found): check consul.token (CONSUL_HTTP_TOKEN)"
	}
	return fmt.Sprintf("consul: the token may not %s (ACL permission denied): grant %s (%s; see %s)",
		e.What, e.Right, e.Grant, PolicyFile)
}

func (e *PermissionError) Unwrap() error { return e.Err }

// permissionError turns err into a *PermissionError for right when Consul refused it for its
// token, and returns nil otherwise.
func permissionError(err error, what string, r Right, grant string) error {
	cause := classifyACL(err)
	if cause == nil {
		return nil
	}
	return &PermissionError{What: what, Right: r, Grant: grant, Err: cause}
}

// Needs is what a node does in Consul, for CheckPermissions.
type Needs struct {
	// KeyPrefix is the prefix every key lives under (for the grant hint).
	KeyPrefix string
	// Keys are the keys written, each probed for key:write.
	Keys []string
	// Services are the service names registered, each checked for service:write.
	Services []string
	// Session: a session on the agent's node is created (probed for session:write).
	Session bool
}

// probeSessionName marks the short-lived session CheckPermissions creates.
const probeSessionName = "mysqlpilot permission check"

// CheckPermissions tests once, at start, every right need says the node will use, so that a
// token lacking one fails with a message naming it instead of a promotion failing later. With
// ACLs off in Consul it returns nil at once. Otherwise it probes what it can for real, with no
// lasting effect: a session is created and destroyed, and each key is written with a
// check-and-set at an index no key can have (Consul checks key:write before it compares, so
// the write is refused or does nothing). Service registrations are asked of Consul's
// authorization endpoint (/v1/internal/acl/authorize, what Consul's UI uses), since a probe
// registration of "<service>-primary" would advertise a primary. The result joins one
// *PermissionError per missing right, in the order above.
func (c *Client) CheckPermissions(ctx context.Context, need Needs) error {
	services, enabled, err := c.authorizeServices(ctx, need.Services)
	if err != nil {
		return err
	}
	if !enabled {
		return nil
	}
	var errs []error
	if need.Session {
		if err := c.probeSession(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, key := range need.Keys {
		if err := c.probeKey(ctx, key, need.KeyPrefix); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, services...)
	return errors.Join(errs...)
}

func (c *Client) probeSession(ctx context.Context) error {
	node := c.AgentNode()
	r := Right{Resource: "session", Segment: node, Access: "write"}
	grant := fmt.Sprintf(`session %q { policy = "write" }, or session_prefix "" { policy = "write" }`, node)
	id, err := c.CreateSession(ctx, SessionOptions{Name: probeSessionName, TTL: MinSessionTTL, Behavior: BehaviorDelete, NodeChecks: []string{}})
	if err != nil {
		if perr := permissionError(err, "create sessions", r, grant); perr != nil {
			return perr
		}
		return fmt.Errorf("consul: permission check: %w", err)
	}
	if err := c.DestroySession(ctx, id); err != nil {
		if perr := permissionError(err, "destroy its sessions", r, grant); perr != nil {
			return perr
		}
		return fmt.Errorf("consul: permission check: %w", err)
	}
	return nil
}

// probeKey writes key with a check-and-set at the largest index, which no key has: Consul
// refuses it for want of key:write, or compares and writes nothing.
func (c *Client) probeKey(ctx context.Context, key, prefix string) error {
	ok, err := c.CAS(ctx, key, nil, math.MaxUint64)
	if err != nil {
		r := Right{Resource: "key", Segment: key, Access: "write"}
		grant := fmt.Sprintf(`key_prefix %q { policy = "write" }`, prefix)
		if perr := permissionError(err, fmt.Sprintf("write the key %q", key), r, grant); perr != nil {
			return perr
		}
		return fmt.Errorf("consul: permission check: %w", err)
	}
	if ok {
		return fmt.Errorf("consul: permission check: a check-and-set of %s at index %d succeeded", key, uint64(math.MaxUint64))
	}
	return nil
}

// authorizeServices asks Consul whether the token may register each service. enabled is false
// when Consul says ACLs are off. An agent without the endpoint (it is internal to Consul) is
// not an error: the rights are then found out at registration.
func (c *Client) authorizeServices(ctx context.Context, services []string) (missing []error, enabled bool, err error) {
	type request struct{ Resource, Segment, Access string }
	type response struct {
		Resource, Segment, Access string
		Allow                     bool
	}
	// Consul answers whether ACLs are on before it looks at the list, so an empty one is fine.
	reqs := make([]request, 0, len(services))
	for _, s := range services {
		reqs = append(reqs, request{Resource: "service", Segment: s, Access: "write"})
	}
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	// A POST, which consul/api's Raw cannot send: the request is made here, with the same
	// HTTP client, address and token.
	body, err := json.Marshal(reqs)
	if err != nil {
		return nil, false, err
	}
	u := c.cfg.Scheme + "://" + c.cfg.Address + "/v1/internal/acl/authorize"
	if c.cfg.Datacenter != "" {
		u += "?dc=" + url.QueryEscape(c.cfg.Datacenter)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, false, fmt.Errorf("consul: permission check: %w", err)
	}
	if c.cfg.Token != "" {
		req.Header.Set("X-Consul-Token", c.cfg.Token)
	}
	resp, err := c.cfg.HttpClient.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("consul: permission check: %w", err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out []response
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(text, &out); err != nil {
			return nil, false, fmt.Errorf("consul: permission check: %w", err)
		}
	case resp.StatusCode == http.StatusUnauthorized && strings.Contains(string(text), "ACL support disabled"):
		return nil, false, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		c.log.Warn("consul cannot say ahead which services this token may register: rights found out at registration")
		return nil, true, nil
	default:
		serr := api.StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(text))}
		if cause := classifyACL(serr); errors.Is(cause, ErrTokenNotFound) {
			return []error{&PermissionError{Err: cause}}, true, nil
		}
		return nil, false, fmt.Errorf("consul: permission check: %w", serr)
	}
	for _, r := range out {
		if r.Resource != "service" || r.Allow {
			continue
		}
		missing = append(missing, &PermissionError{
			What:  fmt.Sprintf("register the service %q", r.Segment),
			Right: Right{Resource: "service", Segment: r.Segment, Access: "write"},
			Grant: fmt.Sprintf(`service %q { policy = "write" }`, r.Segment),
			Err:   ErrPermissionDenied,
		})
	}
	return missing, true, nil
}

// PermissionErrors returns every *PermissionError in err (one, or those errors.Join joined).
func PermissionErrors(err error) []*PermissionError {
	var out []*PermissionError
	var walk func(error)
	walk = func(e error) {
		var pe *PermissionError
		switch x := e.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, inner := range x.Unwrap() {
				walk(inner)
			}
		default:
			if errors.As(e, &pe) {
				out = append(out, pe)
			}
		}
	}
	walk(err)
	return out
}

// permanent reports whether WaitReady should stop retrying err: Consul answered and refused
// the token, or TLS does not match, which waiting does not change.
func permanent(err error) bool {
	var pe *PermissionError
	var te *TLSError
	return errors.As(err, &pe) || errors.As(err, &te)
}
