package cli

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/raftkit/raftkit"
)

// invalid is a bad argument; it matches raftkit.ErrInvalid.
func invalid(format string, args ...any) error {
	return &raftkit.Error{Code: raftkit.CodeInvalidArgument, Msg: fmt.Sprintf(format, args...)}
}

// reason is the message of an error built by invalid, for nesting it in
// another without repeating the "raftkit: invalid argument" prefix.
func reason(err error) string {
	var e *raftkit.Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return err.Error()
}

// ParsePeer parses a member written ID@HOST:PORT, such as
// "4@127.0.0.1:8084". The ID is a non-zero decimal node ID and the address
// a host and port. Errors match raftkit.ErrInvalid. Safe for concurrent use.
func ParsePeer(s string) (raftkit.Peer, error) {
	idText, addr, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return raftkit.Peer{}, invalid("peer %q: want ID@HOST:PORT, such as 4@127.0.0.1:8084", s)
	}
	id, err := ParseID(idText)
	if err != nil {
		return raftkit.Peer{}, invalid("peer %q: %s", s, reason(err))
	}
	if err := CheckAddr(addr); err != nil {
		return raftkit.Peer{}, invalid("peer %q: %s", s, reason(err))
	}
	return raftkit.Peer{ID: id, Addr: addr}, nil
}

// ParsePeers parses a comma-separated list of ID@HOST:PORT members, such
// as "1@10.0.0.1:8081,2@10.0.0.2:8081", refusing empty entries and an ID
// or address named twice. Errors match raftkit.ErrInvalid. Safe for
// concurrent use.
func ParsePeers(list string) ([]raftkit.Peer, error) {
	var out []raftkit.Peer
	ids, addrs := map[uint64]bool{}, map[string]bool{}
	for _, item := range strings.Split(list, ",") {
		if strings.TrimSpace(item) == "" {
			return nil, invalid("empty entry in peer list %q", list)
		}
		p, err := ParsePeer(item)
		if err != nil {
			return nil, err
		}
		if ids[p.ID] {
			return nil, invalid("node ID %d listed twice in %q", p.ID, list)
		}
		if addrs[p.Addr] {
			return nil, invalid("address %s listed twice in %q", p.Addr, list)
		}
		ids[p.ID], addrs[p.Addr] = true, true
		out = append(out, p)
	}
	return out, nil
}

// ParseID parses a non-zero decimal node ID. Errors match
// raftkit.ErrInvalid. Safe for concurrent use.
func ParseID(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	id, err := strconv.ParseUint(s, 10, 64)
	switch {
	case s == "":
		return 0, invalid("missing node ID")
	case err != nil:
		return 0, invalid("node ID %q is not a positive decimal number", s)
	case id == 0:
		return 0, invalid("node ID 0 is reserved; IDs start at 1")
	}
	return id, nil
}

// ParseIDs parses a comma-separated list of node IDs, such as "4,5",
// refusing empty entries and duplicates. Errors match raftkit.ErrInvalid.
// Safe for concurrent use.
func ParseIDs(list string) ([]uint64, error) {
	var out []uint64
	seen := map[uint64]bool{}
	for _, item := range strings.Split(list, ",") {
		if strings.TrimSpace(item) == "" {
			return nil, invalid("empty entry in ID list %q", list)
		}
		id, err := ParseID(item)
		if err != nil {
			return nil, err
		}
		if seen[id] {
			return nil, invalid("node ID %d listed twice in %q", id, list)
		}
		seen[id] = true
		out = append(out, id)
	}
	return out, nil
}

// CheckAddr accepts a raft address: HOST:PORT with a non-empty host and a
// numeric port. Errors match raftkit.ErrInvalid. Safe for concurrent use.
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return invalid("address %q: want HOST:PORT", addr)
	}
	if host == "" {
		return invalid("address %q has no host", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return invalid("address %q: port must be a number from 1 to 65535", addr)
	}
	return nil
}
