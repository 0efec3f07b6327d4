package config

import (
	"context"
	"log/slog"
	"strings"
)

// Redact wraps h so that no secret value appears in any log record's message or attributes,
// whatever code logged it (an error from a library that echoes a DSN, say).
func Redact(h slog.Handler, secrets []string) slog.Handler {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 3 { // shorter values would mangle ordinary words
			pairs = append(pairs, s, "<redacted>")
		}
	}
	if len(pairs) == 0 {
		return h
	}
	return &redactor{h: h, r: strings.NewReplacer(pairs...)}
}

type redactor struct {
	h slog.Handler
	r *strings.Replacer
}

func (x *redactor) Enabled(ctx context.Context, l slog.Level) bool { return x.h.Enabled(ctx, l) }

func (x *redactor) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, x.r.Replace(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(x.attr(a))
		return true
	})
	return x.h.Handle(ctx, out)
}

func (x *redactor) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, x.r.Replace(v.String()))
	case slog.KindGroup:
		as := v.Group()
		out := make([]any, len(as))
		for i, g := range as {
			out[i] = x.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, x.r.Replace(err.Error()))
		}
		return slog.String(a.Key, x.r.Replace(v.String()))
	}
	return a
}

func (x *redactor) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = x.attr(a)
	}
	return &redactor{h: x.h.WithAttrs(out), r: x.r}
}

func (x *redactor) WithGroup(name string) slog.Handler {
	return &redactor{h: x.h.WithGroup(name), r: x.r}
}
