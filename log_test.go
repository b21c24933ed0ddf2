package raftkit

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/internal/testutil"
)

// The election and replication events read at info level, each record
// naming its group and node (and term where it has one); every message is
// logged at debug level only.
func TestLogsAtInfoAndDebug(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			var buf testutil.Buffer
			c := newTestCluster(t, 3, 1)
			c.logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
			c.startAll()
			c.applyN(0, 5, "l")
			c.close()
			out := buf.String()
			for _, want := range []string{"starting pre-vote", "starting election", "became leader",
				"following leader", "follower matches: replicating in a pipeline"} {
				line := lineWith(out, want)
				if line == "" {
					t.Fatalf("no %q record at %v:\n%s", want, level, out)
				}
				if !strings.Contains(line, "group=") || !strings.Contains(line, "node=") || !strings.Contains(line, "term=") {
					t.Errorf("%q lacks group, node or term: %s", want, line)
				}
			}
			sent := lineWith(out, "level=DEBUG msg=sending group=")
			if (sent != "") != (level == slog.LevelDebug) {
				t.Errorf("per-message records at %v: %q", level, sent)
			}
		})
	}
}

func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
