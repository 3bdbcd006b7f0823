package testbin

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Chromium finds Debian's chromium for the dashboard's tests. In CI (CI
// set) a missing browser fails the test, so that the dashboard is always
// checked there; elsewhere the test is skipped.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not installed; .ci/run must install Debian's chromium so that CI checks the dashboard")
	}
	t.Skip("chromium not installed (Debian package chromium): dashboard test skipped")
	return ""
}

// Browse loads url in headless Chromium (bin, from Chromium), lets the
// page run for five seconds of virtual time (its first requests and a few
// refreshes) and returns the DOM it built; with a screenshot path it
// writes a 1200×800 screenshot there instead and returns "".
func Browse(t testing.TB, bin, url, screenshot string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-extensions", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=5000"}
	if screenshot != "" {
		args = append(args, "--screenshot="+screenshot, "--window-size=1200,800", "--hide-scrollbars")
	} else {
		args = append(args, "--dump-dom")
	}
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}
