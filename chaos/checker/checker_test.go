package checker

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func add(client int, call, ret int64, delta, value int64) Op {
	return Op{Client: client, Kind: Add, Delta: delta, Value: value, Call: call, Return: ret, Outcome: OK}
}

func read(client int, call, ret int64, value int64) Op {
	return Op{Client: client, Kind: Read, Value: value, Call: call, Return: ret, Outcome: OK}
}

func unknown(client int, call, ret int64, delta int64) Op {
	return Op{Client: client, Kind: Add, Delta: delta, Call: call, Return: ret, Outcome: Unknown, Err: "timeout"}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ops     []Op
		final   int64
		verdict Verdict
		errHas  string
	}{
		{"sequential", []Op{add(0, 0, 1, 5, 5), read(0, 2, 3, 5), add(0, 4, 5, 7, 12)}, 12, Linearizable, ""},
		{"concurrent adds in either order", []Op{add(0, 0, 10, 5, 12), add(1, 0, 10, 7, 7), read(2, 11, 12, 12)}, 12, Linearizable, ""},
		{"stale read", []Op{add(0, 0, 1, 5, 5), read(1, 2, 3, 0)}, 5, NotLinearizable, "NOT linearizable"},
		{"lost acknowledged add", []Op{add(0, 0, 1, 5, 5), add(0, 2, 3, 7, 12)}, 5, NotLinearizable, "acknowledged increments lost"},
		{"unknown add seen by a later read", []Op{unknown(0, 0, 5, 5), read(1, 6, 7, 5)}, 5, Linearizable, ""},
		{"unknown add never applied", []Op{unknown(0, 0, 5, 5), read(1, 6, 7, 0), add(1, 8, 9, 7, 7)}, 7, Linearizable, ""},
		{"unknown add applied late", []Op{unknown(0, 0, 5, 5), read(1, 6, 7, 0), add(1, 8, 9, 7, 12)}, 12, Linearizable, ""},
		{"unknown add undone", []Op{unknown(0, 0, 5, 5), read(1, 6, 7, 5), read(1, 8, 9, 0)}, 0, NotLinearizable, "NOT linearizable"},
		{"double apply", []Op{add(0, 0, 1, 5, 5), read(0, 2, 3, 10)}, 10, NotLinearizable, "applied twice or invented"},
		{"failed op ignored", []Op{{Client: 0, Kind: Add, Delta: 9, Call: 0, Return: 1, Outcome: Failed}, read(1, 2, 3, 0)}, 0, Linearizable, ""},
		{"add returns the wrong value", []Op{add(0, 0, 1, 5, 6)}, 5, NotLinearizable, "NOT linearizable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(tc.ops, tc.final, 10*time.Second)
			if res.Linearizable != tc.verdict {
				t.Fatalf("verdict %v, want %v", res.Linearizable, tc.verdict)
			}
			err := res.Err()
			if tc.errHas == "" && err != nil {
				t.Fatalf("Err() = %v", err)
			}
			if tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)) {
				t.Fatalf("Err() = %v, want it to say %q", err, tc.errHas)
			}
		})
	}
}

func TestBoundsAndCounts(t *testing.T) {
	ops := []Op{add(0, 0, 1, 5, 5), unknown(1, 0, 3, 7), {Client: 2, Kind: Read, Outcome: Failed, Call: 1, Return: 2}}
	res := Check(ops, 12, 10*time.Second)
	if res.OK != 1 || res.Unknown != 1 || res.Failed != 1 || res.AckedSum != 5 || res.UnknownSum != 7 || !res.InBounds {
		t.Fatalf("%+v", res)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestSaveLoadAndVisualize(t *testing.T) {
	dir := t.TempDir()
	ops := []Op{add(0, 0, 1, 5, 5), unknown(1, 0, 3, 7), read(2, 4, 5, 0)}
	path := filepath.Join(dir, "h.jsonl")
	if err := Save(ops, path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil || !reflect.DeepEqual(got, ops) {
		t.Fatalf("Load: %v, %+v", err, got)
	}
	res := Check(got, 5, 10*time.Second)
	if res.Linearizable != NotLinearizable {
		t.Fatalf("verdict %v", res.Linearizable)
	}
	html := filepath.Join(dir, "h.html")
	if err := res.WriteVisualization(html); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "add(5)") {
		t.Fatalf("visualization: %v (%d bytes)", err, len(b))
	}
	if err := (Result{}).WriteVisualization(html); err == nil {
		t.Fatal("visualized an unchecked result")
	}
	os.WriteFile(path, []byte("{\"kind\":9}\n"), 0o644)
	if _, err := Load(path); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of junk: %v", err)
	}
}

// synthetic builds a linearizable history like the suite's: clients doing
// adds and reads against an atomic counter, one add in 200 timing out
// (half of them applied). Runs under faults see fewer: a client has one
// operation in flight, so a fault leaves at most one unknown per client.
func synthetic(seed uint64, clients, n int) ([]Op, int64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var ops []Op
	var value, now, delta int64
	busyUntil := make([]int64, clients)
	for range n {
		c := rng.IntN(clients)
		call := max(now, busyUntil[c]) + 1
		// The operation takes effect at call+1; it returns a while later,
		// overlapping the next operations of other clients.
		eff := call + 1
		ret := eff + rng.Int64N(50)
		now = eff
		busyUntil[c] = ret
		switch r := rng.Float64(); {
		case r < 0.4:
			ops = append(ops, read(c, call, ret, value))
		case r < 0.995:
			delta++
			value += delta
			ops = append(ops, add(c, call, ret, delta, value))
		case r < 0.9975:
			delta++
			value += delta
			ops = append(ops, unknown(c, call, ret, delta))
		default:
			delta++
			u := unknown(c, call, ret, delta)
			u.Err = "never applied"
			ops = append(ops, u)
		}
	}
	return ops, value
}

// A history of the size a 30 s run records checks within seconds, once
// the unknown increments that never applied are pruned.
func TestSyntheticHistory(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	ops, final := synthetic(1, 15, n)
	res := Check(ops, final, time.Minute)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d operations (%d unknown) checked in %v", len(ops), res.Unknown, res.CheckTime)
}

// A falsified read fails the pruned search and then the whole one (kept
// small: the whole search, with never-applied increments pending, is the
// slow one).
func TestSyntheticHistoryFalsified(t *testing.T) {
	ops, final := synthetic(2, 15, 2000)
	for i := len(ops) / 2; i < len(ops); i++ {
		if ops[i].Kind == Read && ops[i].Outcome == OK {
			ops[i].Value++
			break
		}
	}
	if res := Check(ops, final, time.Minute); res.Linearizable != NotLinearizable {
		t.Fatalf("a falsified read passed: %v", res.Linearizable)
	}
}

// Several increments of unknown outcome applied together (a partitioned
// leader's clients, say, once it heals) among many that never applied:
// the pruning finds the group, so the check stays fast and passes.
func TestManyUnknownsAppliedTogether(t *testing.T) {
	var ops []Op
	var value, now int64
	// Unknown increments in runs of consecutive deltas, as concurrent
	// clients draw them during faults (the shape of a real run's); the six
	// smallest of the top run applied together.
	i := 0
	for _, run := range [][2]int64{{314, 330}, {3423, 3467}, {4745, 4780}} {
		for d := run[0]; d <= run[1]; d++ {
			ops = append(ops, unknown(i%6, now, now+5, d))
			if d >= 4745 && d <= 4750 {
				value += d
			}
			i++
		}
	}
	delta := int64(5000)
	for i := range 3000 {
		now += 10
		c := i % 6
		if i%3 == 0 {
			ops = append(ops, read(c, now, now+5, value))
			continue
		}
		delta++
		value += delta
		ops = append(ops, add(c, now, now+5, delta, value))
	}
	res := Check(ops, value, 20*time.Second)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if res.CheckTime > 10*time.Second {
		t.Logf("checked in %v: the pruning did not find the group", res.CheckTime)
	}
}

// Without a final value only the history is checked: a stale read still
// fails it, a lost increment cannot be told.
func TestCheckHistoryWithoutFinal(t *testing.T) {
	ok := CheckHistory([]Op{add(0, 0, 1, 5, 5), read(1, 2, 3, 5)}, 10*time.Second)
	if err := ok.Err(); err != nil || ok.HasFinal() || ok.InBounds {
		t.Fatalf("%v %+v", err, ok)
	}
	stale := CheckHistory([]Op{add(0, 0, 1, 5, 5), read(1, 2, 3, 0)}, 10*time.Second)
	if stale.Linearizable != NotLinearizable || stale.Err() == nil {
		t.Fatalf("stale read: %v", stale.Linearizable)
	}
	if err := stale.Err(); strings.Contains(err.Error(), "lost") {
		t.Fatalf("bounds checked without a final value: %v", err)
	}
}
