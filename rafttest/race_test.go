//go:build race

package rafttest

// raceEnabled: the race build runs the single-goroutine simulator about ten
// times slower, so the randomized test runs fewer seeds by default.
const raceEnabled = true
