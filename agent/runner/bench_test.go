package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// benchPluginSize is the size the test plugin is padded to, the size of a
// typical Go plugin with gRPC (the reference point).
const benchPluginSize = 20 << 20

// padded returns the fixture's plugin padded with trailing zero bytes to
// benchPluginSize (an ELF executable ignores trailing bytes), re-signed.
func padded(b *testing.B, f *fixture) {
	data := append([]byte(nil), f.plugin...)
	if len(data) < benchPluginSize {
		data = append(data, make([]byte, benchPluginSize-len(data))...)
	}
	f.plugin = data
	f.ref.SHA256, f.ref.Size = hexSum(data), int64(len(data))
	f.cat.put(f.ref.SHA256, data, sign(b, f.key, data))
}

func report(b *testing.B, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	b.ReportMetric(ms(d[len(d)/2]), "median-ms")
	b.ReportMetric(ms(d[len(d)*9/10]), "p90-ms")
}

// BenchmarkRunOverhead measures what a run costs the agent beyond the
// plugin's own work: verify (SHA-256 and SSHSIG of the 20 MiB file), launch
// from a sealed memfd, Manifest, Check, and killing the process group.
func BenchmarkRunOverhead(b *testing.B) {
	f := newFixture(b)
	padded(b, f)
	req := f.req(map[string]string{"mode": "clean"})
	if res := f.r.Run(context.Background(), req, Hooks{}); res.State != wire.StateSkipped { // warm the cache
		b.Fatalf("warm-up run: %+v", res)
	}
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if res := f.r.Run(context.Background(), req, Hooks{}); res.State != wire.StateSkipped {
			b.Fatalf("run: %+v", res)
		}
		d = append(d, time.Since(start))
	}
	report(b, d)
}

// BenchmarkBareProcessStart is the baseline: start the same 20 MiB
// executable from disk and wait for it to exit (run by hand, it prints its
// usage and exits at once).
func BenchmarkBareProcessStart(b *testing.B) {
	f := newFixture(b)
	padded(b, f)
	p := filepath.Join(b.TempDir(), "plugin")
	if err := os.WriteFile(p, f.plugin, 0o700); err != nil {
		b.Fatal(err)
	}
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		_ = exec.Command(p).Run() // exits 2 with its usage
		d = append(d, time.Since(start))
	}
	report(b, d)
}
