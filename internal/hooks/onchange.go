package hooks

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"github.com/mysqlpilot/mysqlpilot/internal/consul"
)

// Watcher is what OnChange needs of Consul: blocking-query watches that call onChange with the
// current value after their first read and after every change, until ctx ends, and that
// retry on their own. *consul.Client implements it.
type Watcher interface {
	WatchService(ctx context.Context, name, tag string, passingOnly bool, onChange func([]consul.ServiceEntry))
	WatchKey(ctx context.Context, key string, onChange func(*consul.KV))
}

// OnChange runs Run whenever a Consul service's instances or a key change. Set Service or Key.
//
// Run is called with the first value read (the starting state) and then with every value
// that differs from the last one it was given; the watch is a blocking query, so a change
// reaches Run within a round trip to Consul, not a polling interval. Runs never overlap:
// changes that happen during a run are coalesced into the next one.
type OnChange struct {
	// Name is used in logs. Optional, defaults to "service <Service>" or "key <Key>".
	Name string

	// Service is the Consul service whose instances to watch.
	Service string
	// Tag keeps only the instances with this tag. Optional, defaults to all.
	Tag string
	// PassingOnly keeps only the instances passing all their checks. Optional, defaults to false.
	PassingOnly bool

	// Key is the Consul key to watch, instead of Service.
	Key string

	// Run reacts to the change; an error is logged. Required.
	Run func(ctx context.Context, c Change) error
}

// Change is what an OnChange watch saw.
type Change struct {
	// Services are the instances of OnChange.Service, sorted by node then ID.
	Services []consul.ServiceEntry
	// KV is the value of OnChange.Key, or nil when the key is absent.
	KV *consul.KV
}

func (o OnChange) name() string {
	switch {
	case o.Name != "":
		return o.Name
	case o.Service != "":
		return "service " + o.Service
	}
	return "key " + o.Key
}

// Loop watches through w and runs o.Run on changes until ctx ends.
func (o OnChange) Loop(ctx context.Context, w Watcher, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("onChange", o.name())
	if (o.Service == "") == (o.Key == "") {
		log.Error("hooks: onChange not started: set exactly one of Service and Key")
		return
	}
	run := func(c Change) {
		if err := o.Run(ctx, c); err != nil && ctx.Err() == nil {
			log.Warn("hooks: onChange failed", "err", err)
		}
	}
	if o.Service != "" {
		var last []consul.ServiceEntry
		seen := false
		w.WatchService(ctx, o.Service, o.Tag, o.PassingOnly, func(es []consul.ServiceEntry) {
			if seen && slices.EqualFunc(last, es, equalEntry) {
				return
			}
			seen, last = true, es
			run(Change{Services: es})
		})
		return
	}
	var last *consul.KV
	seen := false
	w.WatchKey(ctx, o.Key, func(kv *consul.KV) {
		if seen && equalKV(last, kv) {
			return
		}
		seen, last = true, kv
		run(Change{KV: kv})
	})
}

func equalEntry(a, b consul.ServiceEntry) bool {
	return a.Node == b.Node && a.ID == b.ID && a.Address == b.Address && a.Port == b.Port &&
		a.Status == b.Status && slices.Equal(a.Tags, b.Tags) && maps.Equal(a.Meta, b.Meta)
}

// equalKV compares every field, ModifyIndex included: writing the same value again (an
// operator repeating a switchover request) is a change.
func equalKV(a, b *consul.KV) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Key == b.Key && string(a.Value) == string(b.Value) && a.Session == b.Session &&
		a.ModifyIndex == b.ModifyIndex && a.Flags == b.Flags
}
