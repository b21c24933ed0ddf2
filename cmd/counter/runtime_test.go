package main

import (
	"context"
	"encoding/json"
	"testing"
)

func TestServeRuntime(t *testing.T) {
	resp, err := serveRuntime(context.Background(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var st runtimeStats
	if err := json.Unmarshal(resp, &st); err != nil {
		t.Fatal(err)
	}
	if st.Goroutines < 1 || st.HeapBytes == 0 {
		t.Fatalf("%+v", st)
	}
}
