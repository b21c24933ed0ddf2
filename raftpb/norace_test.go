//go:build !race

package raftpb

const raceEnabled = false
