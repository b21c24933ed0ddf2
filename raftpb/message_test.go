package raftpb

import (
	"fmt"
	"testing"
)

func TestMessageTypeNames(t *testing.T) {
	for typ := MessageType(0); typ < NumMessageTypes; typ++ {
		if int(typ) >= len(messageTypeNames) || messageTypeNames[typ] == "" {
			t.Errorf("message type %d has no name", typ)
		}
	}
	if got, want := NumMessageTypes.String(), fmt.Sprintf("MessageType(%d)", uint8(NumMessageTypes)); got != want {
		t.Errorf("NumMessageTypes.String() = %q", got)
	}
}

func TestMessageTypeIsResponse(t *testing.T) {
	responses := map[MessageType]bool{
		MsgPreVoteResp: true, MsgVoteResp: true, MsgAppResp: true, MsgHeartbeatResp: true,
		MsgSnapStatus: true, MsgReadIndexResp: true,
	}
	for typ := MessageType(0); typ < NumMessageTypes; typ++ {
		if got := typ.IsResponse(); got != responses[typ] {
			t.Errorf("%s.IsResponse() = %v", typ, got)
		}
	}
}

func TestMessageStringContext(t *testing.T) {
	for _, tc := range []struct {
		m    Message
		want string
	}{
		{Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 4, Context: 5}, "MsgHeartbeat 1->2 t3 commit=4 ctx=5"},
		{Message{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 3, Context: 5}, "MsgHeartbeatResp 2->1 t3 ctx=5"},
		{Message{Type: MsgReadIndex, From: 2, To: 1, Term: 3, Context: 9}, "MsgReadIndex 2->1 t3 ctx=9"},
		{Message{Type: MsgReadIndexResp, From: 1, To: 2, Term: 3, Index: 7, Context: 9}, "MsgReadIndexResp 1->2 t3 idx=7 ctx=9"},
		{Message{Type: MsgReadIndexResp, From: 1, To: 2, Term: 3, Reject: true, Context: 9}, "MsgReadIndexResp 1->2 t3 reject ctx=9"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
