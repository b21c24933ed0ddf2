package statushttp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
)

// chromium is the browser the page test drives: Debian's package, which
// CI installs (scripts/test.sh). RAFTKIT_CHROMIUM overrides the path.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("RAFTKIT_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no Chromium at %s (apt-get install chromium, or set RAFTKIT_CHROMIUM): the status page is not tested in a browser", path)
	}
	return path
}

// dumpDOM loads url in headless Chromium, lets the page run its scripts
// for a few seconds of virtual time, and returns the DOM as HTML.
func dumpDOM(t *testing.T, exe, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", url)
	// Its own process group, so that its helper processes go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.Output()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers of the group, if any
	}
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("chromium: %v\n%s", err, stderr)
	}
	return string(out)
}

// commitShown returns the leader's commit index as the page shows it.
func commitShown(t *testing.T, dom string) int {
	t.Helper()
	_, row, ok := strings.Cut(dom, `data-role="Leader"`)
	if ok {
		_, row, ok = strings.Cut(row, `<td class="commit">`)
	}
	if ok {
		row, _, ok = strings.Cut(row, "<")
	}
	if !ok {
		t.Fatalf("the page shows no leader row with a commit index:\n%s", dom)
	}
	n, err := strconv.Atoi(strings.ReplaceAll(row, ",", ""))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The page loads, names the leader, and refreshes: the test increments the
// counter once the page has polled /status twice, and the page (one load)
// ends up showing the higher commit index.
func TestPageInChromium(t *testing.T) {
	exe := chromium(t)
	testutil.CheckLeaks(t)
	c := startCluster(t)
	h := New(c.servers[0].Host(), Options{Caller: c.caller, Refresh: 200 * time.Millisecond})
	before := 0
	for _, m := range getReportFrom(t, h).Groups[0].Members {
		before = max(before, int(m.Status.CommitIndex))
	}
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" && polls.Add(1) == 2 {
			for range 5 {
				c.incr(t)
			}
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	dom := dumpDOM(t, exe, srv.URL+"/")
	if !strings.Contains(dom, `data-leader="`) || strings.Contains(dom, `data-leader=""`) {
		t.Fatalf("the page names no leader:\n%s", dom)
	}
	for _, want := range []string{"★", "<svg", "replication from the leader", c.addrs[0]} {
		if !strings.Contains(dom, want) {
			t.Fatalf("the page lacks %q:\n%s", want, dom)
		}
	}
	if n := polls.Load(); n < 3 {
		t.Fatalf("the page polled /status %d times, want it to refresh at least twice", n)
	}
	if after := commitShown(t, dom); after < before+5 {
		t.Fatalf("the page shows commit index %d; it was %d before 5 increments made while the page was open", after, before)
	}
}

// getReportFrom asks h for /status directly.
func getReportFrom(t *testing.T, h http.Handler) Report {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	return getReport(t, srv.URL)
}
