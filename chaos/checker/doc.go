// Package checker records the fault-injection suite's client operations
// on the Counter and checks the history: linearizability with porcupine
// (github.com/anishathalye/porcupine), and the bounds that catch a lost
// or doubled increment. Increments use unique deltas, so the final value
// says how much of what was acknowledged survived.
//
// Operations end in one of three outcomes: OK, Failed (certainly without
// effect, left out of the check) and Unknown (an increment that timed out
// or lost its connection: it may take effect at any time after its call,
// or never, which porcupine sees as an operation that never returns).
//
// It owns the recorded history and its files (Save, Load,
// WriteVisualization); it never talks to servers.
package checker
