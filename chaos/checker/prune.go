package checker

import (
	"cmp"
	"math"
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
// each such gap it keeps a smallest set of unused unknown increments,
// called before the later state was observed, with that sum. It reports ok=false when a gap has none,
// leaving the decision to the full check.
func pruneUnknowns(ops []Op, final int64) (kept []Op, ok bool) {
	produced := map[int64]int64{} // state -> delta of the acknowledged add that produced it
	seen := map[int64]int64{0: 0} // state -> earliest return of an operation that observed it
	note := func(state, at int64) {
		if t, ok := seen[state]; !ok || at < t {
			seen[state] = at
		}
	}
	var unknown []int // indexes into ops
	for i, op := range ops {
		switch {
		case op.Outcome == Unknown && op.Kind == Add:
			unknown = append(unknown, i)
		case op.Outcome == OK && op.Kind == Add:
			produced[op.Value] = op.Delta
			note(op.Value, op.Return)
			note(op.Value-op.Delta, op.Return)
		case op.Outcome == OK:
			note(op.Value, op.Return)
		}
	}
	note(final, math.MaxInt64)
	if len(unknown) == 0 {
		return ops, true
	}
	states := make([]int64, 0, len(seen))
	for st := range seen {
		states = append(states, st)
	}
	slices.Sort(states)
	used := map[int]bool{}
	for k := 1; k < len(states); k++ {
		if d, ok := produced[states[k]]; ok && states[k]-d == states[k-1] {
			continue // the acknowledged add accounts for the step
		}
		// Unknown adds that make up the gap began before the state after
		// it was observed.
		var cands []int
		for _, i := range unknown {
			if !used[i] && ops[i].Call < seen[states[k]] {
				cands = append(cands, i)
			}
		}
		set, found := subsetSum(ops, cands, states[k]-states[k-1])
		if !found {
			return nil, false
		}
		for _, i := range set {
			used[i] = true
		}
	}
	for i, op := range ops {
		if op.Outcome == Unknown && op.Kind == Add && !used[i] {
			continue
		}
		kept = append(kept, op)
	}
	return kept, true
}

// subsetBudget bounds the search for one gap's increments; past it the
// gap counts as unexplained and the whole history is checked instead.
const subsetBudget = 1 << 23

// subsetSum finds a smallest set of cands (indexes into ops) whose deltas
// sum to target, trying sizes 1, 2, … in turn within subsetBudget steps.
// Candidates are searched largest first, and a branch ends as soon as the
// largest or smallest deltas it could still take cannot reach the sum.
func subsetSum(ops []Op, cands []int, target int64) ([]int, bool) {
	slices.SortFunc(cands, func(a, b int) int { return cmp.Compare(ops[b].Delta, ops[a].Delta) })
	n := len(cands)
	prefix := make([]int64, n+1) // prefix[j]: sum of the j largest deltas
	for j, c := range cands {
		prefix[j+1] = prefix[j] + ops[c].Delta
	}
	pos := make(map[int64]int, n) // delta -> its position in cands
	for j, c := range cands {
		pos[ops[c].Delta] = j
	}
	steps := 0
	var pick []int
	var dfs func(from, left int, sum int64) bool
	dfs = func(from, left int, sum int64) bool {
		if left == 0 {
			return sum == 0
		}
		if left == 1 {
			// Deltas are unique: the last one is a lookup, not a scan.
			j, ok := pos[sum]
			if ok && j >= from {
				pick = append(pick, cands[j])
			}
			return ok && j >= from
		}
		if sum < prefix[n]-prefix[n-left] {
			return false // even the smallest left deltas exceed it
		}
		for j := from; j <= n-left; j++ {
			if steps++; steps > subsetBudget {
				return false
			}
			if sum > prefix[j+left]-prefix[j] {
				return false // the largest left deltas from here fall short
			}
			d := ops[cands[j]].Delta
			if d > sum {
				continue
			}
			pick = append(pick, cands[j])
			if dfs(j+1, left-1, sum-d) {
				return true
			}
			pick = pick[:len(pick)-1]
		}
		return false
	}
	for size := 1; size <= n && steps <= subsetBudget; size++ {
		pick = pick[:0]
		if dfs(0, size, target) {
			return slices.Clone(pick), true
		}
	}
	return nil, false
}
