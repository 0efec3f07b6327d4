//go:build system

package system

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The topology page in a real browser: Debian's chromium, headless, driven with chromedp. It
// opens the page through HAProxy, saves a screenshot, checks that the primary shown is Consul's, then
// stops the primary and checks that the page shows the new one within 10 s, with the change in
// its history.
func TestTopologyPage(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Fatal("no chromium on PATH (test/tools/install-deps.sh installs Debian's chromium)")
	}
	p, s := startCluster(t, nil, 3)
	// As `make up` prints it: through HAProxy, which serves it from any live node.
	url := fmt.Sprintf("http://127.0.0.1:%d/", p.PagePort)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser),
		chromedp.NoSandbox, chromedp.Flag("headless", true), chromedp.WindowSize(1280, 800))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelTimeout()

	shown := func() (primary string, nodes int) {
		txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#primary")))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".node").length`))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		return strings.TrimSpace(txt), n
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(".node"))); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	Eventually(t, 10*time.Second, 200*time.Millisecond, "the page showing Consul's primary and 3 members", func() (bool, string) {
		got, n := shown()
		return got == s.Primary.Name && n == 3, got
	})
	screenshot(ctx, t, url, "topology.png")

	old := s.Primary
	t0 := time.Now()
	p.Docker(90*time.Second, "stop", "--time", "30", old.ID)
	var now string
	took := Eventually(t, 10*time.Second, 100*time.Millisecond, "the page showing a new primary", func() (bool, string) {
		now, _ = shown()
		return now != "" && now != old.Name && !strings.HasPrefix(now, "none"), now
	})
	Eventually(t, 10*time.Second, 200*time.Millisecond, "the change of primary in the page's history", func() (bool, string) {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#history tr[data-to="`+now+`"]').length`))
		if err != nil {
			t.Fatalf("read the history: %v", err)
		}
		return n > 0, ""
	})
	screenshot(ctx, t, url, "topology-after-stop.png")
	s2 := p.WaitSettled(t, 2, settleTimeout)
	if s2.Primary.Name != now {
		t.Errorf("the page shows %s as primary, the cluster settled on %s", now, s2.Primary)
	}
	figures(t, "page_shows_new_primary_after", took, "since_docker_stop", time.Since(t0).Round(time.Millisecond))
}

// screenshot saves the page as a PNG under test/system/out (quality 100: PNG).
func screenshot(ctx context.Context, t *testing.T, url, name string) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join(repoRoot(), "test", "system", "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of %s: %s (%d bytes)", url, path, len(shot))
}
