// Command realguardio runs RealGuardIO: `realguardio up` starts the whole
// system in one process; `realguardio serve <service>` runs one service.
// Everything lives in internal/cli so that tests can drive it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/realguardio/realguardio/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
