//go:build race

package raftpb

// raceEnabled: under the race detector sync.Pool drops items at random, so
// fmt's allocation count per error varies from run to run.
const raceEnabled = true
