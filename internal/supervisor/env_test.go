package supervisor

import (
	"os"
	"slices"
	"testing"
)

var osEnviron = os.Environ

func TestScrubEnvAndPass(t *testing.T) {
	env := []string{"PATH=/bin", "MYSQL_PASSWORD=x1", "CONSUL_HTTP_TOKEN=t", "MANTA_PRIVATE_KEY=k", "S3_SECRET_KEY=s",
		"MYSQL_PWD=p", "DSN=user:hunter2hunter2@tcp", "SNAPSHOT_KEY=unused-by-the-config", "SNAPSHOT_KEY_FILE=/run/secrets/k", "LANG=C"}
	got := ScrubEnv(env, []string{"hunter2hunter2"})
	if want := []string{"PATH=/bin", "SNAPSHOT_KEY_FILE=/run/secrets/k", "LANG=C"}; !slices.Equal(got, want) {
		t.Errorf("ScrubEnv = %q, want %q", got, want)
	}
	if got := Pass(env, []string{"CONSUL_HTTP_TOKEN"}); !slices.Equal(got, []string{"CONSUL_HTTP_TOKEN=t"}) {
		t.Errorf("Pass = %q", got)
	}
}
