// Package leaktest fails a test binary whose goroutines outlive its tests.
// Every package whose tests start agents, servers, pools or links calls
// Main from its TestMain, so a goroutine without a known end (see
// STYLE.md) fails the run that made it, naming where it is parked.
//
// It knows the few goroutines of third-party code that outlive their
// owner's Shutdown by design, and ignores only those; each is listed in
// leaktest.go with the reason.
package leaktest
