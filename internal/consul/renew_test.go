package consul

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeRenew is one Consul HTTP API answering PUT /v1/session/renew/<id>.
type fakeRenew struct {
	srv   *httptest.Server
	calls atomic.Int32
}

// newFakeRenew answers with answer: "ok", "gone" (Consul's 404 for an unknown session),
// "error" (a 500), "hang" (until the request is given up), or "late" (ok after twice the
// hedge delay). GET /v1/kv/<prefix>?recurse answers one key with "ok" and "late", a 404
// (without Consul's index header, as anything but Consul) with "gone".
func newFakeRenew(t *testing.T, answer string) *fakeRenew {
	f := &fakeRenew{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/kv/") {
			f.calls.Add(1)
			switch answer {
			case "late":
				time.Sleep(2 * HedgeAfter)
				fallthrough
			case "ok":
				w.Header().Set("X-Consul-Index", "42")
				_, _ = w.Write([]byte(`[{"Key":"service/mysql/leader","Value":"e30=","ModifyIndex":42}]`))
			case "gone":
				http.NotFound(w, r)
			case "error":
				http.Error(w, "rpc error", http.StatusInternalServerError)
			case "hang":
				<-r.Context().Done()
			}
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/v1/session/renew/") {
			http.NotFound(w, r)
			return
		}
		f.calls.Add(1)
		switch answer {
		case "late":
			time.Sleep(2 * HedgeAfter)
			_, _ = w.Write([]byte(`[{"ID":"s1","TTL":"10s"}]`))
		case "ok":
			_, _ = w.Write([]byte(`[{"ID":"s1","TTL":"10s"}]`))
		case "gone":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("Session id 's1' not found"))
		case "error":
			http.Error(w, "rpc error getting client: failed to get conn: dial tcp: i/o timeout", http.StatusInternalServerError)
		case "hang":
			<-r.Context().Done()
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRenew) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func TestRenewSessionFallback(t *testing.T) {
	tests := []struct {
		name      string
		agent     string
		fallbacks []string
		wantErr   error // nil: renewed
		wantAny   bool  // an error that is not ErrSessionGone
		asked     bool  // the fallbacks were asked
	}{
		{name: "agent answers: fallbacks untouched", agent: "ok", fallbacks: []string{"ok", "ok"}},
		{name: "agent hangs (its server died): a live fallback renews", agent: "hang", fallbacks: []string{"hang", "ok"}, asked: true},
		{name: "agent fails at once: a live fallback renews", agent: "error", fallbacks: []string{"error", "ok"}, asked: true},
		{name: "session gone, said by the agent: no fallback asked", agent: "gone", fallbacks: []string{"ok"}, wantErr: ErrSessionGone},
		{name: "session gone, said by a fallback while the agent hangs: gone, once nothing else answered", agent: "hang", fallbacks: []string{"gone"}, wantErr: ErrSessionGone, asked: true},
		{name: "a fallback's 404 does not beat the agent's late renewal", agent: "late", fallbacks: []string{"gone"}, asked: true},
		{name: "every path fails: an error that says nothing of the session", agent: "error", fallbacks: []string{"error", "error"}, wantAny: true, asked: true},
		{name: "no fallbacks: the agent's failure", agent: "error", wantAny: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent := newFakeRenew(t, tt.agent)
			var fbs []*fakeRenew
			var addrs []string
			for _, a := range tt.fallbacks {
				f := newFakeRenew(t, a)
				fbs = append(fbs, f)
				addrs = append(addrs, f.addr())
			}
			c, err := New(Options{Address: agent.addr(), Fallback: addrs}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*HedgeAfter)
			defer cancel()
			err = c.RenewSession(ctx, "s1")
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case tt.wantAny && (err == nil || errors.Is(err, ErrSessionGone)):
				t.Fatalf("err = %v, want a failure that is not %v", err, ErrSessionGone)
			case tt.wantErr == nil && !tt.wantAny && err != nil:
				t.Fatalf("err = %v, want the session renewed", err)
			}
			asked := 0
			for _, f := range fbs {
				asked += int(f.calls.Load())
			}
			if tt.asked != (asked > 0) {
				t.Errorf("fallbacks asked %d times, want asked=%v", asked, tt.asked)
			}
		})
	}
}

func TestNewFallbackScheme(t *testing.T) {
	if _, err := New(Options{Address: "https://127.0.0.1:8501", Fallback: []string{"http://consul:8500"}}, nil); err == nil ||
		!strings.Contains(err.Error(), "fallback") {
		t.Fatalf("err = %v, want one naming the fallback whose scheme differs", err)
	}
	if _, err := New(Options{Address: "https://127.0.0.1:8501", Fallback: []string{"https://consul:8501"}}, nil); err != nil {
		t.Fatal(err)
	}
}

// Once a fallback answered for a hanging agent, the next requests do not wait for the agent
// first (each renewal here has less time than the hedge delay), until the agent
// answers again.
func TestHedgeStopsWaitingForASlowAgent(t *testing.T) {
	agent, live := newFakeRenew(t, "hang"), newFakeRenew(t, "ok")
	c, err := New(Options{Address: agent.addr(), Fallback: []string{live.addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*HedgeAfter)
	defer cancel()
	if err := c.RenewSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), HedgeAfter/3)
		err := c.RenewSession(ctx, "s1")
		cancel()
		if err != nil {
			t.Fatalf("renewal %d after the fallback answered: %v (it waited for the agent again)", i+2, err)
		}
	}
}

// The agent's success, even one that lost the race, ends the slow mode: the next request
// waits for the agent first again.
func TestHedgeSlowModeEndsWhenTheAgentAnswers(t *testing.T) {
	agent, live := newFakeRenew(t, "late"), newFakeRenew(t, "ok")
	c, err := New(Options{Address: agent.addr(), Fallback: []string{live.addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RenewSession(context.Background(), "s1"); err != nil { // the fallback wins
		t.Fatal(err)
	}
	// The agent's late answer arrives after the race was won.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		slow := time.Now().Before(c.agentSlowUntil)
		c.mu.Unlock()
		if !slow {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent answered, yet the client still does not wait for it first")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A read through a fallback must hold a key and a Raft index: a 404 from something that is
// not our Consul reads as "no keys" in consul/api, which would be a cluster with no lock, no
// members and no sync set.
func TestHedgedListRefusesAnEmptyAnswer(t *testing.T) {
	for _, tt := range []struct {
		agent, fallback string
		wantKeys        int
		wantErr         bool
	}{
		{"hang", "gone", 0, true},
		{"hang", "ok", 1, false},
		{"late", "gone", 1, false},
	} {
		agent, fb := newFakeRenew(t, tt.agent), newFakeRenew(t, tt.fallback)
		c, err := New(Options{Address: agent.addr(), Fallback: []string{fb.addr()}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*HedgeAfter)
		kvs, _, err := c.List(ctx, "service/mysql/")
		cancel()
		if (err != nil) != tt.wantErr || len(kvs) != tt.wantKeys {
			t.Errorf("agent %s, fallback %s: %d keys, err %v; want %d keys, error %v", tt.agent, tt.fallback, len(kvs), err, tt.wantKeys, tt.wantErr)
		}
	}
}

// A fallback whose Raft peers are not the agent's (another Consul cluster) is dropped; one
// that does not answer is kept, its answers still checked one by one.
func TestCheckFallbacksDropsAnotherCluster(t *testing.T) {
	peers := func(list string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/status/peers" {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write([]byte(list))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	agent := peers(`["10.0.0.1:8300","10.0.0.2:8300","10.0.0.3:8300"]`)
	same := peers(`["10.0.0.3:8300","10.0.0.1:8300","10.0.0.2:8300"]`)
	other := peers(`["10.9.0.1:8300"]`)
	down := httptest.NewServer(http.NotFoundHandler())
	downAddr := strings.TrimPrefix(down.URL, "http://")
	down.Close()
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	c, err := New(Options{Address: addr(agent), Fallback: []string{addr(same), addr(other), downAddr}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.checkFallbacks(ctx)
	var kept []string
	for _, f := range c.fallback {
		kept = append(kept, f.addr)
	}
	if want := []string{addr(same), downAddr}; strings.Join(kept, ",") != strings.Join(want, ",") {
		t.Errorf("fallbacks kept %v, want %v", kept, want)
	}
}
