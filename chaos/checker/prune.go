package checker

import (
	"slices"
)

// pruneUnknowns drops the increments of unknown outcome that no observed
// value needs, which is what keeps checking tractable: an increment that
// never applied stays pending to the end of the history, and porcupine
// tries to place it before every later operation.
//
// Dropping is sound only in one direction: an unknown increment may
// always take effect after the final read, unobserved, so if the history
// without it is linearizable, so is the history with it. A history whose
// pruned form fails is checked again whole (see Check).
//
// The observed values (each increment's result, each read, the final
// value) are states of a counter whose deltas are positive, so they
// increase along any linearization. Between two consecutive observed
// states the difference, less the delta of the acknowledged increment
// that produced the later one, must be made of unknown increments; for
// each such gap it keeps a smallest set of unused unknown increments
// (up to three) with that sum. It reports ok=false when a gap has none,
// leaving the decision to the full check.
func pruneUnknowns(ops []Op, final int64) (kept []Op, ok bool) {
	produced := map[int64]int64{} // state -> delta of the acknowledged add that produced it
	states := []int64{0, final}
	var unknown []int // indexes into ops
	for i, op := range ops {
		switch {
		case op.Outcome == Unknown && op.Kind == Add:
			unknown = append(unknown, i)
		case op.Outcome == OK && op.Kind == Add:
			produced[op.Value] = op.Delta
			states = append(states, op.Value, op.Value-op.Delta)
		case op.Outcome == OK:
			states = append(states, op.Value)
		}
	}
	if len(unknown) == 0 {
		return ops, true
	}
	slices.Sort(states)
	states = slices.Compact(states)
	byDelta := map[int64]int{} // delta -> index into ops, of unused unknowns
	for _, i := range unknown {
		byDelta[ops[i].Delta] = i
	}
	keep := map[int]bool{}
	for k := 1; k < len(states); k++ {
		gap := states[k] - states[k-1]
		if d, ok := produced[states[k]]; ok && states[k]-d == states[k-1] {
			continue // the acknowledged add accounts for the step
		}
		if gap <= 0 {
			return nil, false
		}
		set, found := subsetSum(byDelta, gap)
		if !found {
			return nil, false
		}
		for _, d := range set {
			keep[byDelta[d]] = true
			delete(byDelta, d)
		}
	}
	for i, op := range ops {
		if op.Outcome == Unknown && op.Kind == Add && !keep[i] {
			continue
		}
		kept = append(kept, op)
	}
	return kept, true
}

// subsetSum finds up to three distinct deltas of avail summing to target,
// preferring fewer.
func subsetSum(avail map[int64]int, target int64) ([]int64, bool) {
	if _, ok := avail[target]; ok {
		return []int64{target}, true
	}
	ds := make([]int64, 0, len(avail))
	for d := range avail {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	for i, a := range ds {
		if b := target - a; b > a {
			if _, ok := avail[b]; ok {
				return []int64{a, b}, true
			}
		}
		for _, b := range ds[i+1:] {
			if c := target - a - b; c > b {
				if _, ok := avail[c]; ok {
					return []int64{a, b, c}, true
				}
			}
		}
	}
	return nil, false
}
