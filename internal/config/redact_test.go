package config

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactHidesSecretsEverywhere(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Redact(slog.NewTextHandler(&buf, nil), []string{"s3cr3t-pw", "tok-123"}))
	log.Info("connect with s3cr3t-pw failed", "err", errors.New("dsn root:s3cr3t-pw@unix"), "token", "tok-123")
	log.With("dsn", "x:s3cr3t-pw").WithGroup("g").Warn("w", "k", "tok-123")
	out := buf.String()
	for _, s := range []string{"s3cr3t-pw", "tok-123"} {
		if strings.Contains(out, s) {
			t.Errorf("log contains %q:\n%s", s, out)
		}
	}
	if strings.Count(out, "<redacted>") != 5 {
		t.Errorf("want 5 redactions:\n%s", out)
	}
}

func TestRedactIgnoresTooShortSecrets(t *testing.T) {
	var buf bytes.Buffer
	slog.New(Redact(slog.NewTextHandler(&buf, nil), []string{"a"})).Info("a cat")
	if !strings.Contains(buf.String(), "a cat") {
		t.Errorf("a one-letter secret mangled the log: %s", buf.String())
	}
}
