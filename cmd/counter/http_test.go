package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftkit/raftkit/internal/testutil"
)

// testHTTP starts a one-server group with --http and checks the status
// page, /status and /metrics, then that SIGTERM closes the HTTP port too.
func testHTTP(t *testing.T, exe string) {
	addrs, err := freeLoopbackAddrs(2)
	if err != nil {
		t.Fatal(err)
	}
	raft, web := addrs[0], addrs[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "server", "--data", t.TempDir(), "--addr", raft, "--peers", raft,
		"--tick", "20ms", "--http", web)
	logs := &testutil.Buffer{} // written by exec's copying goroutine
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + web + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil(t, 20*time.Second, "the server to lead and say so on /status", func() bool {
		code, body := get("/status")
		return code == 200 && strings.Contains(body, `"role": "Leader"`)
	})
	for path, wants := range map[string][]string{
		"/":        {"raftkit status", "<script>"},
		"/metrics": {"raftkit_role{", "raftkit_elections_won_total{", "raftkit_logengine_fsyncs_total{", "go_goroutines"},
	} {
		code, body := get(path)
		for _, w := range wants {
			if code != 200 || !strings.Contains(body, w) {
				t.Fatalf("%s: %d, no %q in:\n%.2000s", path, code, w, body)
			}
		}
	}
	if !strings.Contains(logs.String(), `"status page"`) {
		t.Errorf("the log does not point at the status page:\n%s", logs.String())
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	exited <- nil // for the deferred cleanup
	if c, err := net.DialTimeout("tcp", web, time.Second); err == nil {
		c.Close()
		t.Fatal("the HTTP port still accepts after the server stopped")
	}
}
