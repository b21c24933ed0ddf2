package checker

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is the linearizability checker's answer.
type Verdict uint8

// Verdicts.
const (
	// Linearizable: some order of the operations, each taking effect
	// between its call and return, explains every result.
	Linearizable Verdict = iota + 1
	// NotLinearizable: no such order exists.
	NotLinearizable
	// Undecided: the checker ran out of time.
	Undecided
)

func (v Verdict) String() string {
	switch v {
	case Linearizable:
		return "linearizable"
	case NotLinearizable:
		return "NOT linearizable"
	case Undecided:
		return "undecided (checker timeout)"
	}
	return "not checked"
}

// Result is what Check found.
type Result struct {
	Linearizable Verdict
	// OK, Failed and Unknown count the operations by outcome.
	OK, Failed, Unknown int
	// AckedSum is the sum of acknowledged increments, UnknownSum that of
	// increments whose outcome is unknown; FinalValue is the counter at
	// the end. InBounds: AckedSum <= FinalValue <= AckedSum + UnknownSum.
	AckedSum, UnknownSum, FinalValue int64
	InBounds                         bool
	CheckTime                        time.Duration

	info    porcupine.LinearizationInfo
	model   porcupine.Model
	noFinal bool // CheckHistory: no agreed final value to hold bounds to
}

// Check checks a counter history that started from zero and ended with
// final (read linearizably after every client stopped):
//
//   - linearizability of the whole history with porcupine, the final read
//     included: increments of unknown outcome may take effect at any time
//     after their call, or never (they may linearize after the final read);
//   - bounds: no acknowledged increment lost (final >= the acknowledged
//     sum) and none applied twice or invented (final <= acknowledged +
//     unknown). Deltas are unique, so a double apply of an acknowledged
//     increment can hide in the upper bound only while unknown increments
//     pad it; reads in the history then usually expose it to porcupine.
//
// Increments of unknown outcome that no observed value needs are left out
// of the first search (see pruneUnknowns); should that search fail, the
// whole history is searched again before the verdict is given.
// timeout bounds each search; beyond it the verdict is Undecided.
func Check(ops []Op, final int64, timeout time.Duration) Result {
	return check(ops, &final, timeout)
}

// CheckHistory is Check for a run whose members never agreed on a final
// value: the history alone is checked for linearizability, and the bounds
// on the final value are not (InBounds is false, FinalValue 0).
func CheckHistory(ops []Op, timeout time.Duration) Result {
	return check(ops, nil, timeout)
}

func check(ops []Op, finalp *int64, timeout time.Duration) Result {
	res := Result{model: counterModel(), noFinal: finalp == nil}
	var final int64
	if finalp != nil {
		final = *finalp
		res.FinalValue = final
	}
	for _, op := range ops {
		switch op.Outcome {
		case OK:
			res.OK++
			if op.Kind == Add {
				res.AckedSum += op.Delta
			}
		case Unknown:
			res.Unknown++
			if op.Kind == Add {
				res.UnknownSum += op.Delta
			}
		default:
			res.Failed++
		}
	}
	res.InBounds = !res.noFinal && final >= res.AckedSum && final <= res.AckedSum+res.UnknownSum

	start := time.Now()
	verdict := porcupine.Unknown
	pruned, ok := ops, false
	if !res.noFinal {
		pruned, ok = pruneUnknowns(ops, final)
	}
	if ok {
		verdict, res.info = porcupine.CheckOperationsVerbose(res.model, toPorcupine(pruned, finalp), timeout)
	}
	// The whole history, unless the pruned one was the whole history.
	if verdict != porcupine.Ok && (!ok || len(pruned) != len(ops)) {
		verdict, res.info = porcupine.CheckOperationsVerbose(res.model, toPorcupine(ops, finalp), timeout)
	}
	res.CheckTime = time.Since(start)
	switch verdict {
	case porcupine.Ok:
		res.Linearizable = Linearizable
	case porcupine.Illegal:
		res.Linearizable = NotLinearizable
	default:
		res.Linearizable = Undecided
	}
	return res
}

// toPorcupine converts a history for the checker: failed operations and
// reads of unknown outcome are left out (they had no effect, or told
// nothing); increments of unknown outcome never return; the final read
// comes after every other operation returned.
func toPorcupine(ops []Op, final *int64) []porcupine.Operation {
	hist := make([]porcupine.Operation, 0, len(ops)+1)
	var lastReturn int64
	maxClient := 0
	for _, op := range ops {
		maxClient = max(maxClient, op.Client)
		lastReturn = max(lastReturn, op.Return)
		switch {
		case op.Outcome == OK:
			hist = append(hist, porcupine.Operation{ClientId: op.Client, Call: op.Call, Return: op.Return,
				Input: input{op.Kind, op.Delta}, Output: output{op.Value, true}})
		case op.Outcome == Unknown && op.Kind == Add:
			hist = append(hist, porcupine.Operation{ClientId: op.Client, Call: op.Call, Return: math.MaxInt64,
				Input: input{op.Kind, op.Delta}, Output: output{}})
		}
	}
	if final == nil {
		return hist
	}
	return append(hist, porcupine.Operation{ClientId: maxClient + 1, Call: lastReturn + 1, Return: lastReturn + 2,
		Input: input{Read, 0}, Output: output{*final, true}})
}

// HasFinal reports whether the result held a final value to the bounds
// (Check) or checked the history alone (CheckHistory).
func (r Result) HasFinal() bool { return !r.noFinal }

// Err is nil when every check passed, else says which failed.
func (r Result) Err() error {
	var errs []error
	if r.Linearizable != Linearizable {
		errs = append(errs, fmt.Errorf("history: %v (%d ok, %d unknown operations; checked in %v)",
			r.Linearizable, r.OK, r.Unknown, r.CheckTime.Round(time.Millisecond)))
	}
	if r.noFinal {
		return errors.Join(errs...)
	}
	if r.FinalValue < r.AckedSum {
		errs = append(errs, fmt.Errorf("acknowledged increments lost: final value %d < acknowledged sum %d",
			r.FinalValue, r.AckedSum))
	}
	if hi := r.AckedSum + r.UnknownSum; r.FinalValue > hi {
		errs = append(errs, fmt.Errorf("increments applied twice or invented: final value %d > acknowledged %d + unknown %d",
			r.FinalValue, r.AckedSum, r.UnknownSum))
	}
	return errors.Join(errs...)
}

// WriteVisualization writes porcupine's interactive HTML view of the
// history Check examined (the longest partial linearizations, where a
// failed check got stuck) to path.
func (r Result) WriteVisualization(path string) error {
	if r.model.Step == nil {
		return errors.New("checker: no checked history to visualize")
	}
	return porcupine.VisualizePath(r.model, r.info, path)
}

type input struct {
	Kind  Kind
	Delta int64
}

type output struct {
	Value int64
	Known bool // false for an increment of unknown outcome
}

// counterModel is the sequential specification: a counter from zero;
// an increment returns the new value, a read the current one.
func counterModel() porcupine.Model {
	return porcupine.Model{
		Init: func() interface{} { return int64(0) },
		Step: func(state, in, out interface{}) (bool, interface{}) {
			s, i, o := state.(int64), in.(input), out.(output)
			if i.Kind == Read {
				return o.Value == s, s
			}
			next := s + i.Delta
			return !o.Known || o.Value == next, next
		},
		Hash: func(state interface{}) uint64 { return uint64(state.(int64)) },
		DescribeOperation: func(in, out interface{}) string {
			i, o := in.(input), out.(output)
			switch {
			case i.Kind == Read:
				return fmt.Sprintf("read() -> %d", o.Value)
			case o.Known:
				return fmt.Sprintf("add(%d) -> %d", i.Delta, o.Value)
			}
			return fmt.Sprintf("add(%d) -> ?", i.Delta)
		},
		DescribeState: func(state interface{}) string { return fmt.Sprint(state.(int64)) },
	}
}
