// Package consul is mysqlpilot's thin adapter over the Consul HTTP API: service registration
// with a TTL check, sessions and leases (Lease), KV with locks, and blocking-query watches.
//
// It makes no HA decision. Its types are its own (no consul/api type appears in its API), so
// that internal/ha can declare the few methods it needs as a small interface and fake them in
// tests. Every call takes a context; every error names the operation that failed, wraps its
// cause with %w, and can be tested with errors.Is against the sentinels below.
package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// Defaults applied by New and the watch helpers.
const (
	// DefaultAddress is the agent address used when Options.Address is empty.
	DefaultAddress = "127.0.0.1:8500"
	// DefaultTimeout bounds a non-blocking request when Options.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// DefaultWatchWait is the longest a watch's blocking query waits before it asks again.
	DefaultWatchWait = time.Minute
)

// Health check states accepted by UpdateTTL and reported in ServiceEntry.Status.
const (
	StatusPassing  = "passing"
	StatusWarning  = "warning"
	StatusCritical = "critical"
)

// Sentinel errors, for errors.Is.
var (
	// ErrSessionGone means Consul no longer knows the session: it was destroyed, its TTL
	// expired, or a check bound to it failed. Every lock it held is released (or its keys
	// deleted, for Behavior "delete"); a primary must fence at once.
	ErrSessionGone = errors.New("session no longer exists")

	// ErrNotRegistered means the agent does not know a check or service and this Client has
	// no registration to restore it from (never registered here, or deregistered).
	ErrNotRegistered = errors.New("not registered")
)

// Options configure a Client. The zero value talks plain HTTP to DefaultAddress.
type Options struct {
	// Address is the agent's HTTP API as host:port. Optional, defaults to "127.0.0.1:8500".
	// A "http://" or "https://" prefix is accepted and sets Scheme.
	Address string

	// Token is the ACL token sent with every request. Optional, defaults to none; note that
	// the consul/api library then falls back to CONSUL_HTTP_TOKEN(_FILE) from the environment.
	// It is never logged.
	Token string

	// Scheme is "http" or "https". Optional, defaults to "http".
	Scheme string

	// CAFile is a PEM bundle used to verify the agent's certificate. Optional, defaults to the
	// system roots.
	CAFile string

	// CertFile and KeyFile are a client certificate for mutual TLS. Optional, both or neither.
	CertFile string
	KeyFile  string

	// InsecureSkipVerify disables verification of the agent's certificate. Optional, defaults
	// to false; for tests only.
	InsecureSkipVerify bool

	// Datacenter is sent with every request. Optional, defaults to the agent's own.
	Datacenter string

	// Timeout bounds each non-blocking request, and is added to the wait of a blocking one,
	// when the caller's context has no earlier deadline. Optional, defaults to 10s. A request
	// that hangs must not hang the HA loop.
	Timeout time.Duration

	// Fallback are other HTTP APIs (host:port) of the same Consul datacenter, agents or
	// servers, reached with the same scheme, token and TLS settings. A session renewal or a
	// List that Address has not answered within HedgeAfter is also sent through each of them
	// (see hedge). Optional, defaults to none.
	Fallback []string
}

// Client talks to one Consul agent. It remembers the services it registered so that it can
// restore them when the agent forgets them (see UpdateTTL). It is safe for concurrent use.
type Client struct {
	api     *api.Client
	cfg     *api.Config // as api.NewClient completed it (its HTTP client; its token: never logged)
	addr    string
	timeout time.Duration
	log     *slog.Logger

	fallback []fallback // Options.Fallback, in order

	mu        sync.Mutex
	services  map[string]Service // by service ID: what Register was given, for re-registration
	agentNode string             // the agent's node name, learnt by WaitReady
	renewedBy string             // where the last successful renewal went through ("" is Address)
	// agentSlowUntil: a fallback answered a hedged request the agent did not; until then
	// hedge does not wait for the agent first.
	agentSlowUntil time.Time
	// fallbackDC is the datacenter every request through a fallback names: Options.Datacenter,
	// else the agent's own (learnt by WaitReady), so that a server answers for ours.
	fallbackDC string
}

// fallback is one of Options.Fallback.
type fallback struct {
	addr string
	api  *api.Client
}

// New builds a Client. It does not contact the agent; call WaitReady for that.
func New(opts Options, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := opts.Address
	if addr == "" {
		addr = DefaultAddress
	}
	scheme := opts.Scheme
	if s, rest, ok := strings.Cut(addr, "://"); ok {
		if scheme != "" && scheme != s {
			return nil, fmt.Errorf("consul: address %q contradicts scheme %q", addr, opts.Scheme)
		}
		scheme, addr = s, rest
	}
	switch scheme {
	case "":
		scheme = "http"
	case "http", "https":
	default:
		return nil, fmt.Errorf("consul: scheme %q: want http or https", scheme)
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, fmt.Errorf("consul: certFile and keyFile go together (got certFile %q, keyFile %q)", opts.CertFile, opts.KeyFile)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cfg := &api.Config{
		Address:    addr,
		Scheme:     scheme,
		Datacenter: opts.Datacenter,
		Token:      opts.Token,
		TLSConfig: api.TLSConfig{
			CAFile:             opts.CAFile,
			CertFile:           opts.CertFile,
			KeyFile:            opts.KeyFile,
			InsecureSkipVerify: opts.InsecureSkipVerify,
		},
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul: client for %s: %w", addr, err)
	}
	var fbs []fallback
	for _, a := range opts.Fallback {
		if s, rest, ok := strings.Cut(a, "://"); ok {
			if s != scheme {
				return nil, fmt.Errorf("consul: fallback %q: scheme %q, want %q (the fallbacks share the address's scheme)", a, s, scheme)
			}
			a = rest
		}
		fcfg := *cfg
		fcfg.Address = a
		fcfg.HttpClient, fcfg.Transport = nil, nil // api.NewClient builds its own, with the TLS settings
		fc, err := api.NewClient(&fcfg)
		if err != nil {
			return nil, fmt.Errorf("consul: client for fallback %s: %w", a, err)
		}
		fbs = append(fbs, fallback{addr: a, api: fc})
	}
	return &Client{
		api:        c,
		cfg:        cfg,
		addr:       addr,
		timeout:    timeout,
		log:        log.With("consul", addr),
		fallback:   fbs,
		fallbackDC: opts.Datacenter,
		services:   make(map[string]Service),
	}, nil
}

// Address is the agent address this Client talks to, as host:port.
func (c *Client) Address() string { return c.addr }

// AgentNode is the name of the agent's node, where this Client's sessions are created ("" until
// WaitReady succeeded).
func (c *Client) AgentNode() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agentNode
}

// WaitReady blocks until the agent answers, a leader is known and the agent's own node is in
// the catalog (before that, creating a session fails with "Missing node registration"). It
// retries with backoff (100ms up to 2s) until ctx ends, and then returns an error naming the
// address and the last failure. A token Consul refuses for these reads is not retried (the
// error is a *PermissionError naming the right), nor is a TLS mismatch (a *TLSError naming
// the config field to fix).
func (c *Client) WaitReady(ctx context.Context) error {
	b := backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	var lastErr error
	for attempt := 0; ; attempt++ {
		err := c.ready(ctx)
		if err == nil {
			if attempt > 0 {
				c.log.Info("consul ready", "attempts", attempt+1)
			}
			return nil
		}
		lastErr = err
		if permanent(err) {
			return err
		}
		if ctx.Err() != nil {
			break
		}
		d := b.next(rand.Float64)
		c.log.Info("waiting for consul", "err", err, "retry_in", d)
		if !sleepCtx(ctx, d) {
			break
		}
	}
	return fmt.Errorf("consul at %s unreachable: %w (%w)", c.addr, lastErr, ctx.Err())
}

func (c *Client) ready(ctx context.Context) error {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	q := c.query(ctx)
	leader, err := c.api.Status().LeaderWithQueryOptions(q)
	if err != nil {
		if terr := classifyTLS(err); terr != nil {
			return terr
		}
		return fmt.Errorf("leader: %w", err)
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	var self struct {
		Config struct{ NodeName, Datacenter string }
	}
	if _, err := c.api.Raw().Query("/v1/agent/self", &self, q); err != nil {
		if perr := permissionError(err, "read the agent's description (/v1/agent/self)",
			Right{Resource: "agent", Access: "read"}, `agent_prefix "" { policy = "read" }`); perr != nil {
			return perr
		}
		return fmt.Errorf("agent self: %w", err)
	}
	name := self.Config.NodeName
	nodeRead := Right{Resource: "node", Segment: name, Access: "read"}
	nodeGrant := fmt.Sprintf(`node %q { policy = "read" }, or node_prefix "" { policy = "read" }`, name)
	node, meta, err := c.api.Catalog().Node(name, q)
	if err != nil {
		if perr := permissionError(err, "read the agent's node in the catalog", nodeRead, nodeGrant); perr != nil {
			return perr
		}
		return fmt.Errorf("catalog node %s: %w", name, err)
	}
	if node == nil || node.Node == nil {
		if meta != nil && meta.ResultsFilteredByACLs {
			return &PermissionError{What: "read the agent's node in the catalog", Right: nodeRead, Grant: nodeGrant, Err: ErrPermissionDenied}
		}
		return fmt.Errorf("node %s not yet in the catalog", name)
	}
	c.mu.Lock()
	c.agentNode = name
	if c.fallbackDC == "" {
		c.fallbackDC = self.Config.Datacenter
	}
	c.mu.Unlock()
	c.checkFallbacks(ctx)
	return nil
}

// checkFallbacks drops, with a warning, each fallback whose Raft peers are not the agent's:
// another Consul cluster (a wrong consul.fallback) must never answer for ours. One that does
// not answer now is kept, unchecked: its answers must still pass hedge's own tests.
func (c *Client) checkFallbacks(ctx context.Context) {
	c.mu.Lock()
	fbs := c.fallback
	c.mu.Unlock()
	if len(fbs) == 0 {
		return
	}
	ours, err := c.api.Status().PeersWithQueryOptions(c.query(ctx))
	if err != nil || len(ours) == 0 {
		return
	}
	slices.Sort(ours)
	var keep []fallback
	for _, f := range fbs {
		theirs, err := f.api.Status().PeersWithQueryOptions(c.query(ctx))
		slices.Sort(theirs)
		switch {
		case err != nil:
			c.log.Info("consul.fallback not reachable now; kept", "fallback", f.addr, "err", err)
		case !slices.Equal(ours, theirs):
			c.log.Warn("consul.fallback is not a member of this agent's Consul cluster: not used", "fallback", f.addr,
				"its_servers", theirs, "ours", ours)
			continue
		}
		keep = append(keep, f)
	}
	c.mu.Lock()
	c.fallback = keep
	c.mu.Unlock()
}

// reqCtx bounds a request by c.timeout plus wait (the blocking part of a blocking query,
// plus the up to wait/16 jitter Consul adds), unless ctx already ends sooner.
func (c *Client) reqCtx(ctx context.Context, wait time.Duration) (context.Context, context.CancelFunc) {
	d := c.timeout
	if wait > 0 {
		d += wait + wait/16
	}
	return context.WithTimeout(ctx, d)
}

func (c *Client) query(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

func (c *Client) write(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(ctx)
}

// statusCode returns the HTTP status of a consul/api error, or 0 when it is not one.
func statusCode(err error) (int, string) {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code, se.Body
	}
	var sp *api.StatusError
	if errors.As(err, &sp) && sp != nil {
		return sp.Code, sp.Body
	}
	return 0, ""
}

// isNotFound reports whether err is the agent saying it does not know a check or service.
// Consul 1.16 answers 404; older agents answered 500 with one of these phrases.
func isNotFound(err error) bool {
	code, body := statusCode(err)
	switch code {
	case http.StatusNotFound:
		return true
	case http.StatusInternalServerError:
		return strings.Contains(body, "does not have associated TTL") ||
			strings.Contains(body, "Unknown check") ||
			strings.Contains(body, "Unknown service")
	}
	return false
}

// backoff computes exponential delays with jitter: the n-th delay is drawn from
// [d/2, d) where d = min*2^n capped at max.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

// next returns the next delay; rnd returns a float in [0, 1).
func (b *backoff) next(rnd func() float64) time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur *= 2
	}
	if b.cur > b.max {
		b.cur = b.max
	}
	half := b.cur / 2
	return half + time.Duration(rnd()*float64(b.cur-half))
}

func (b *backoff) reset() { b.cur = 0 }

// sleepCtx waits d, or less if ctx ends first; it reports whether the full wait elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
