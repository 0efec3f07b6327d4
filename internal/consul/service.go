package consul

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/consul/api"
)

// Service is a service instance registered with the local agent, with one TTL check that the
// caller feeds through UpdateTTL.
type Service struct {
	// ID is unique on this agent, e.g. "mysql-<node>". Required.
	ID string
	// Name is the service name others discover, e.g. "mysql". Required.
	Name string
	// Address others use to reach the instance. Optional, defaults to the node's address.
	Address string
	// Port of the instance. Optional, defaults to 0.
	Port int
	// Tags, e.g. "primary" or "replica". Optional.
	Tags []string
	// Meta is free-form metadata (no secrets: anyone with catalog read sees it). Optional.
	Meta map[string]string
	// CheckID names the TTL check; bind it to a session with SessionOptions.ServiceChecks.
	// Optional, defaults to "service:<ID>", Consul's own default.
	CheckID string
	// CheckTTL is how long the check stays in its last state without an UpdateTTL before it
	// turns critical. Required. Unlike a session TTL it has no 10s floor.
	CheckTTL time.Duration
	// DeregisterCriticalAfter lets Consul remove the service once its check has been critical
	// this long. Optional, defaults to 0: never. Consul enforces at least one minute and reaps
	// every 30s.
	DeregisterCriticalAfter time.Duration
}

func (s Service) checkID() string {
	if s.CheckID != "" {
		return s.CheckID
	}
	return "service:" + s.ID
}

func (s Service) clone() Service {
	s.Tags = slices.Clone(s.Tags)
	s.Meta = maps.Clone(s.Meta)
	return s
}

// ServiceEntry is one instance of a service as the health endpoint reports it.
type ServiceEntry struct {
	Node    string            // Consul node name
	ID      string            // service ID
	Address string            // service address, or the node's when the service has none
	Port    int               // service port
	Tags    []string          // service tags
	Meta    map[string]string // service metadata
	Status  string            // aggregate of the node's and the service's checks: passing, warning or critical
}

// Register registers s with the local agent, replacing any previous registration with the same
// ID and its checks. The check starts critical (Consul's default for a TTL check) until the
// first UpdateTTL. The Client remembers s so that UpdateTTL can restore it after the agent
// forgot it.
func (c *Client) Register(ctx context.Context, s Service) error {
	if err := c.register(ctx, s); err != nil {
		return err
	}
	c.mu.Lock()
	c.services[s.ID] = s.clone()
	c.mu.Unlock()
	return nil
}

func (c *Client) register(ctx context.Context, s Service) error {
	switch {
	case s.ID == "":
		return fmt.Errorf("consul: register service %q: ID is required", s.Name)
	case s.Name == "":
		return fmt.Errorf("consul: register service %s: Name is required", s.ID)
	case s.CheckTTL <= 0:
		return fmt.Errorf("consul: register service %s: CheckTTL must be positive, got %s", s.ID, s.CheckTTL)
	}
	check := &api.AgentServiceCheck{
		CheckID: s.checkID(),
		Name:    s.Name + " health",
		TTL:     s.CheckTTL.String(),
	}
	if s.DeregisterCriticalAfter > 0 {
		check.DeregisterCriticalServiceAfter = s.DeregisterCriticalAfter.String()
	}
	reg := &api.AgentServiceRegistration{
		ID:      s.ID,
		Name:    s.Name,
		Address: s.Address,
		Port:    s.Port,
		Tags:    s.Tags,
		Meta:    s.Meta,
		Check:   check,
	}
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	if err := c.api.Agent().ServiceRegisterOpts(reg, opts); err != nil {
		return fmt.Errorf("consul: register service %s: %w", s.ID, err)
	}
	return nil
}

// UpdateTTL sets the state of a TTL check: status is StatusPassing, StatusWarning or
// StatusCritical, note is shown as the check's output (keep secrets out of it).
//
// When the agent says it does not know the check (it restarted and lost its state, as a dev
// agent or one without a data dir does), UpdateTTL registers again the service this Client
// registered with that check and retries once: without that, a restarted agent would leave the
// service unregistered forever (a lesson from ContainerPilot). When no such service is known
// (never registered here, or deregistered since), the error wraps ErrNotRegistered.
func (c *Client) UpdateTTL(ctx context.Context, checkID, status, note string) error {
	switch status {
	case StatusPassing, StatusWarning, StatusCritical:
	default:
		return fmt.Errorf("consul: update check %s: status %q: want passing, warning or critical", checkID, status)
	}
	err := c.updateTTL(ctx, checkID, status, note)
	if err == nil || !isNotFound(err) {
		return err
	}
	s, ok := c.serviceOfCheck(checkID)
	if !ok {
		return fmt.Errorf("%w (%w)", err, ErrNotRegistered)
	}
	c.log.Warn("agent does not know the check: registering the service again", "service", s.ID, "check", checkID)
	if rerr := c.register(ctx, s); rerr != nil {
		return fmt.Errorf("consul: update check %s: re-register: %w", checkID, rerr)
	}
	return c.updateTTL(ctx, checkID, status, note)
}

func (c *Client) updateTTL(ctx context.Context, checkID, status, note string) error {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	if err := c.api.Agent().UpdateTTLOpts(checkID, note, status, c.query(ctx)); err != nil {
		return fmt.Errorf("consul: update check %s: %w", checkID, err)
	}
	return nil
}

func (c *Client) serviceOfCheck(checkID string) (Service, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.services {
		if s.checkID() == checkID {
			return s.clone(), true
		}
	}
	return Service{}, false
}

// Deregister removes the service and its check from the agent. The Client forgets it first, so
// that a late UpdateTTL cannot bring it back. A service the agent does not know is not an
// error.
func (c *Client) Deregister(ctx context.Context, id string) error {
	c.mu.Lock()
	delete(c.services, id)
	c.mu.Unlock()
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	if err := c.api.Agent().ServiceDeregisterOpts(id, c.query(ctx)); err != nil && !isNotFound(err) {
		return fmt.Errorf("consul: deregister service %s: %w", id, err)
	}
	return nil
}

// Service returns the healthy-or-not instances of a service, optionally only those with tag
// and only those passing every check, sorted by node then ID, and the query's index.
func (c *Client) Service(ctx context.Context, name, tag string, passingOnly bool) ([]ServiceEntry, uint64, error) {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	entries, meta, err := c.api.Health().Service(name, tag, passingOnly, c.query(ctx))
	if err != nil {
		return nil, 0, fmt.Errorf("consul: health of service %s: %w", name, err)
	}
	out := make([]ServiceEntry, 0, len(entries))
	for _, e := range entries {
		if e == nil || e.Service == nil {
			continue
		}
		se := ServiceEntry{
			ID:      e.Service.ID,
			Address: e.Service.Address,
			Port:    e.Service.Port,
			Tags:    slices.Clone(e.Service.Tags),
			Meta:    maps.Clone(e.Service.Meta),
			Status:  e.Checks.AggregatedStatus(),
		}
		if e.Node != nil {
			se.Node = e.Node.Node
			if se.Address == "" {
				se.Address = e.Node.Address
			}
		}
		out = append(out, se)
	}
	slices.SortFunc(out, func(a, b ServiceEntry) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
	})
	return out, meta.LastIndex, nil
}

// blockingWait is how long a query may block on the server: 0 for a plain read.
func blockingWait(waitIndex uint64, maxWait time.Duration) time.Duration {
	if waitIndex == 0 {
		return 0
	}
	if maxWait <= 0 {
		return 5 * time.Minute
	}
	return maxWait
}
