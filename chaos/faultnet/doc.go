// Package faultnet is the fault-injection suite's network: a TCP proxy in
// front of each server and the link faults between servers.
//
// Every server listens on an address of its own and advertises its
// proxy's address, which is what its peers dial; each server dials from
// its own loopback source address, SourceIP(node), so a proxy knows which
// server every connection comes from (NodeOf) and can cut directed links.
// Connections from any other source (clients) pass untouched.
//
// A link from → to is blocked or open. Blocking it closes the connections
// from dialed to to and closes new ones as soon as they are accepted, the
// way a partition breaks TCP connections (sooner than timeouts would); on
// connections to dialed to from, the bytes from sends back are held until
// the link opens, while to's bytes still flow. Partition blocks both
// directions between groups; Heal opens every link and releases held
// bytes. No byte is dropped from, reordered in or added to a stream that
// stays open.
//
// It owns its listeners, connections and goroutines, all of which Close
// ends; it never starts or signals processes.
package faultnet
