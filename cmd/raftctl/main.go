package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/raftkit/raftkit/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, dialTCP, client.Options{})
	stop()
	os.Exit(code)
}
