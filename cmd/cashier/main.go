// Command cashier is the OpenCashier broker cashier: `cashier serve` runs
// the server; `cashier help` lists every command. The work is done by Main
// (cashier.go), which end-to-end tests start in-process.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // the first signal starts a graceful shutdown; a second one kills at once
	}()
	m := &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	err := m.Run(ctx, os.Args[1:])
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cashier: %v\n", err)
	}
	os.Exit(ExitCode(err))
}
