// Package testutil holds helpers shared by the module's tests: polling for a
// condition, checking that a test leaves no goroutines behind, and a
// transport.Handler that records what it receives.
//
// It is for tests only and is never imported by non-test code.
package testutil
