package rafttest

import "testing"

// TestRandomizedMembershipCoverage checks that the randomized runs that
// change membership reach what membership adds: committed changes, leaders
// removing themselves, learners promoted, and snapshots installed meanwhile
// (a snapshot carries the configuration at its index). A driver that
// stopped reaching them would make TestRandomizedSafety prove less without
// failing.
func TestRandomizedMembershipCoverage(t *testing.T) {
	var sum Stats
	covered := func() bool {
		return sum.ConfsCommitted > 0 && sum.LeaderRemovals > 0 && sum.Promotions > 0 && sum.Installs > 0
	}
	runs := 0
	seed := uint64(1)
	for ; seed <= 400 && !covered(); seed++ {
		opts := randomOptions(seed)
		probe := opts
		probe.setDefaultsForRun()
		if !probe.MembershipChanges {
			continue
		}
		runs++
		res, err := Run(opts)
		if err != nil {
			t.Fatal(err)
		}
		s := &res.Stats
		sum.ConfsCommitted += s.ConfsCommitted
		sum.LeaderRemovals += s.LeaderRemovals
		sum.Promotions += s.Promotions
		sum.Installs += s.Installs
	}
	if !covered() {
		t.Fatalf("seeds 1..400 left some membership path unexercised: %+v", sum)
	}
	t.Logf("covered by %d membership runs among seeds 1..%d: %d configuration entries committed, %d leader removals, %d promotions, %d installs",
		runs, seed-1, sum.ConfsCommitted, sum.LeaderRemovals, sum.Promotions, sum.Installs)
}
