// Command patchbay-loadgen simulates a fleet of Patchbay agents over real
// WSS + mutual TLS links, and drives the relay benchmark behind `make bench`.
//
// Subcommands:
//
//	enroll  enroll N simulated agents and write their identities to one file
//	agents  hold K agent links from that file, reporting progress as JSON lines
//	bench   start a relay and several agents processes, measure, write docs/benchmarks.md;
//	        then interactive sessions against a fresh relay and real agents,
//	        the consent helper, the web console in Chromium, and password
//	        sign-ins under a flood of wrong passwords
//	        (--only fleet|sessions|consent|console|auth runs one part)
//	auth-flood  send wrong passwords to a relay's password login at a fixed rate (the auth part's attacker)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		cancel(fmt.Errorf("received %v", sig))
	}()
	err := rootCmd().ExecuteContext(ctx)
	signal.Stop(sigs)
	if cause := context.Cause(ctx); err != nil && cause != nil && errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w (%v)", err, cause)
	}
	cancel(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "patchbay-loadgen:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "patchbay-loadgen",
		Short: "Simulated Patchbay agents and the relay benchmark",
		Long: `patchbay-loadgen runs simulated agents against a Patchbay relay, over the same
agent/link code, WSS and mutual TLS as patchbay-agent, and measures the relay.

A typical manual session:

  patchbay-loadgen enroll --server https://127.0.0.1:8443 --ca-fingerprint sha256:... \
      --token pbe_... --count 5000 --out ids.jsonl
  patchbay-loadgen agents --identities ids.jsonl --from 0 --count 5000 \
      --server https://127.0.0.1:8443 --source 127.0.0.2

"make bench" runs "patchbay-loadgen bench", which does all of this itself with
a fresh relay, then measures interactive sessions (setup latency, relayed
stream and SSH throughput, scp, keystroke round trip) against another fresh
relay and real patchbay-agent processes, and rewrites docs/benchmarks.md.

One process can hold at most a few thousand links below its open-file limit
(one socket each), and one source address at most ~28,000 (ephemeral ports):
spread large fleets over several processes and --source addresses
(127.0.0.2, 127.0.0.3, ... all reach the loopback relay on Linux).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(enrollCmd(), agentsCmd(), benchCmd(), fanoutPeersCmd(), authFloodCmd(), versionCmd())
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(*cobra.Command, []string) { fmt.Println(version) },
	}
}
