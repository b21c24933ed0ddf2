package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestStoryRunsToTheEnd(t *testing.T) {
	for _, nodes := range []string{"3", "5"} {
		var out bytes.Buffer
		if err := run([]string{"-nodes", nodes, "-seed", "7"}, &out); err != nil {
			t.Fatalf("nodes=%s: %v\n%s", nodes, err, out.String())
		}
		for _, want := range []string{"is leader in term", "committed: durable on a quorum", "failover took", "catches up", "done:"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("nodes=%s: output lacks %q:\n%s", nodes, want, out.String())
			}
		}
	}
}

func TestSameSeedSameStory(t *testing.T) {
	var a, b bytes.Buffer
	if err := run([]string{"-seed", "3"}, &a); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-seed", "3"}, &b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatal("the same seed told two different stories")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nodes", "0"}, {"-nodes", "9"}, {"-writes", "0"}, {"-bogus"}} {
		var out bytes.Buffer
		if err := run(args, &out); err == nil {
			t.Fatalf("%v: no error", args)
		}
	}
}
