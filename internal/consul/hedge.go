package consul

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
)

// HedgeAfter is how long a hedged request (RenewSession, List) waits for the agent before it
// also asks the fallbacks: far above a healthy answer (a few milliseconds), far below the
// fence deadline's slack.
const HedgeAfter = 300 * time.Millisecond

// hedge runs ask through the agent and, once the agent has failed or not answered within
// HedgeAfter, through every fallback too (Options.Fallback), naming the datacenter dc (the
// agent's, for the agent ""); the first success wins, with where it came from. A fallback's
// answer counts only if valid (nil: any) accepts it.
//
// An error for which final is true (a session Consul does not know) ends the race at once
// when the agent says it, and is returned from a fallback only when nothing succeeded: a
// fallback's word must not beat the agent's. Otherwise the errors of every path are returned
// together.
//
// For requests any Consul agent or server answers alike (reads and session renewals, which
// are forwarded to the leader), never for an agent's own state, and never for writes (a
// write the stuck agent sends late could land after a newer one sent another way).
func hedge[T any](ctx context.Context, c *Client, ask func(ctx context.Context, cl *api.Client, via, dc string) (T, error),
	valid func(T) error, final func(error) bool) (T, string, error) {
	c.mu.Lock()
	fbs, dc, slow := c.fallback, c.fallbackDC, time.Now().Before(c.agentSlowUntil)
	c.mu.Unlock()
	if len(fbs) == 0 {
		v, err := ask(ctx, c.api, c.addr, "")
		return v, c.addr, err
	}
	type answer struct {
		v   T
		via string
		err error
	}
	answers := make(chan answer, 1+len(fbs)) // buffered: late answers do not block
	var agentOK atomic.Bool
	// The agent's request outlives the race (up to the caller's deadline): its answer, even
	// one that lost, is what tells us the agent is back.
	actx, acancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
	if d, ok := ctx.Deadline(); ok {
		actx, acancel = context.WithDeadline(actx, d)
	}
	go func() {
		defer acancel()
		v, err := ask(actx, c.api, c.addr, "")
		if err == nil {
			// Any answer of the agent's, even one that lost the race, ends the slow mode.
			agentOK.Store(true)
			c.mu.Lock()
			c.agentSlowUntil = time.Time{}
			c.mu.Unlock()
		}
		answers <- answer{v, c.addr, err}
	}()
	wait := HedgeAfter
	if slow {
		wait = 0 // it failed us a moment ago: do not wait for it first
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	pending, hedged := 1, false
	hedgeNow := func() {
		if hedged {
			return
		}
		hedged = true
		for _, f := range fbs {
			go func() {
				v, err := ask(ctx, f.api, f.addr, dc)
				if err == nil && valid != nil {
					if verr := valid(v); verr != nil {
						err = fmt.Errorf("answer refused from consul.fallback %s: %w", f.addr, verr)
					}
				}
				answers <- answer{v, f.addr, err}
			}()
		}
		pending += len(fbs)
	}
	var errs []error
	var finalErr error
	for {
		select {
		case <-timer.C:
			hedgeNow()
		case a := <-answers:
			pending--
			if a.err == nil {
				if a.via != c.addr && !agentOK.Load() {
					c.mu.Lock()
					c.agentSlowUntil = time.Now().Add(agentSlowFor)
					c.mu.Unlock()
				}
				return a.v, a.via, nil
			}
			if final != nil && final(a.err) {
				if a.via == c.addr {
					return a.v, a.via, a.err
				}
				finalErr = a.err
			} else {
				errs = append(errs, a.err)
			}
			hedgeNow()
			if pending == 0 {
				var zero T
				if finalErr != nil {
					return zero, "", finalErr
				}
				return zero, "", errors.Join(errs...)
			}
		}
	}
}

// agentSlowFor is how long after a fallback answered for it the agent is not waited for
// (hedge asks everyone at once); its own first answer ends that.
const agentSlowFor = 10 * time.Second
