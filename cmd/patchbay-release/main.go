// Command patchbay-release builds a Patchbay release into dist/<version>:
// the agent, CLI and built-in plugins for Linux, Windows and macOS, the relay
// for Linux, .deb and .rpm packages of the agent and the relay, the macOS
// LaunchDaemon plist, the SHA256SUMS manifest and, with --key, its SSHSIG
// signature (namespace patchbay-release). `make release` runs it; the work is
// in internal/packaging.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/patchbay/patchbay/internal/packaging"
)

func main() {
	var o packaging.Options
	var platforms string
	flag.StringVar(&o.Version, "version", "", "release version (make release passes VERSION, git describe)")
	flag.StringVar(&o.Out, "out", "", "release directory (default dist/VERSION); must not exist or be empty")
	flag.StringVar(&o.Key, "key", "", "the organisation's SSH private key: sign SHA256SUMS with it (ssh-keygen -Y sign -n "+packaging.Namespace+")")
	flag.StringVar(&o.Repo, "repo", ".", "the repository's root")
	flag.StringVar(&o.Go, "go", "go", "go command")
	flag.StringVar(&platforms, "platforms", "", "comma-separated os/arch list (default: all of "+platformList(packaging.Platforms)+")")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: patchbay-release --version V [--out DIR] [--key KEY] [--platforms os/arch,...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if o.Out == "" && o.Version != "" {
		o.Out = filepath.Join("dist", o.Version)
	}
	if platforms != "" {
		for _, s := range strings.Split(platforms, ",") {
			p, err := packaging.ParsePlatform(strings.TrimSpace(s))
			if err != nil {
				fail(err)
			}
			o.Platforms = append(o.Platforms, p)
		}
	}
	o.Log = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := packaging.Build(ctx, o); err != nil {
		fail(err)
	}
	fmt.Printf("release %s in %s; agent sizes:\n", o.Version, o.Out)
	ps := o.Platforms
	if ps == nil {
		ps = packaging.Platforms
	}
	for _, p := range ps {
		fi, err := os.Stat(filepath.Join(o.Out, packaging.FileName("patchbay-agent", o.Version, p)))
		if err != nil {
			fail(err)
		}
		fmt.Printf("  %-14s %6.1f MiB\n", p, float64(fi.Size())/(1<<20))
	}
}

func platformList(ps []packaging.Platform) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "patchbay-release:", err)
	os.Exit(1)
}
