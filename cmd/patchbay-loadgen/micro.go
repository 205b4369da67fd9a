package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// tcpBaseline measures one raw TCP stream over loopback, in process: a
// writer pushes 128 KiB writes for d, a reader drains them. It returns the
// throughput in Gbit/s.
func tcpBaseline(d time.Duration) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type result struct {
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{0, err}
			return
		}
		defer c.Close()
		n, err := io.CopyBuffer(io.Discard, c, make([]byte, 128<<10))
		got <- result{n, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 128<<10)
	start := time.Now()
	deadline := start.Add(d)
	c.SetWriteDeadline(deadline.Add(5 * time.Second))
	for time.Now().Before(deadline) {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return 0, err
		}
	}
	c.Close()
	r := <-got
	if r.err != nil {
		return 0, r.err
	}
	return float64(r.n) * 8 / time.Since(start).Seconds() / 1e9, nil
}

// goBench is one line of `go test -bench` output.
type goBench struct {
	Pkg, Name string
	NsPerOp   float64
	MBPerS    float64            // 0 when the benchmark sets no byte count
	Metrics   map[string]float64 // custom units (b.ReportMetric), e.g. "median-ms"
}

// goBenchCmd is the command runGoBench runs, for the report.
func goBenchCmd(pkgs []string) string {
	return "go test -run '^$' -bench . -benchtime 1s " + strings.Join(pkgs, " ")
}

// runGoBench runs the packages' Go benchmarks and parses their results. The
// raw output is returned too.
func runGoBench(ctx context.Context, goBin string, pkgs []string) ([]goBench, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchtime", "1s"}, pkgs...)
	cmd := exec.CommandContext(ctx, goBin, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	raw := out.String()
	if err != nil {
		return nil, raw, fmt.Errorf("%s: %w", goBenchCmd(pkgs), err)
	}
	return parseGoBench(raw), raw, nil
}

func parseGoBench(raw string) []goBench {
	var res []goBench
	var pkg string
	sc := bufio.NewScanner(strings.NewReader(raw))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "pkg:" {
			pkg = fs[1]
			continue
		}
		if len(fs) < 4 || !strings.HasPrefix(fs[0], "Benchmark") {
			continue
		}
		b := goBench{Pkg: pkg, Name: fs[0]}
		for i := 2; i+1 < len(fs); i += 2 {
			v, err := strconv.ParseFloat(fs[i], 64)
			if err != nil {
				continue
			}
			switch fs[i+1] {
			case "ns/op":
				b.NsPerOp = v
			case "MB/s":
				b.MBPerS = v
			default:
				if b.Metrics == nil {
					b.Metrics = map[string]float64{}
				}
				b.Metrics[fs[i+1]] = v
			}
		}
		res = append(res, b)
	}
	return res
}
