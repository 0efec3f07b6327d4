//go:build integration

package supervisor

import (
	"context"
	"strings"
	"testing"
)

// A child started without its own environment gets the supervisor's scrubbed one: no
// configured secret, no variable named as one.
func TestChildEnvironmentHoldsNoSecret(t *testing.T) {
	t.Setenv("MYSQL_ROOT_PASSWORD", "root-secret-value")
	t.Setenv("S3_SECRET_KEY", "s3-secret-value")
	t.Setenv("SOME_URL", "https://user:literal-secret-in-url@example.com")
	t.Setenv("PLAIN", "kept")
	sup.SetEnviron(ScrubEnv(osEnviron(), []string{"literal-secret-in-url"}))
	defer sup.SetEnviron(nil)
	var out strings.Builder
	if err := sup.Run(context.Background(), Cmd{Name: "env", Path: "env", Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	env := out.String()
	for _, secret := range []string{"root-secret-value", "s3-secret-value", "literal-secret-in-url"} {
		if strings.Contains(env, secret) {
			t.Errorf("the child's environment holds %q:\n%s", secret, env)
		}
	}
	if !strings.Contains(env, "PLAIN=kept") {
		t.Errorf("an ordinary variable was dropped:\n%s", env)
	}
}
