//go:build !race

package rafttest

const raceEnabled = false
