// Package testutil holds helpers shared by the module's tests: polling for a
// condition, checking that a test leaves no goroutines behind, a
// transport.Handler that records what it receives, and a buffer many
// goroutines may write to.
//
// It is for tests only and is never imported by non-test code.
package testutil
