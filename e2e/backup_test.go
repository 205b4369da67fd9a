package e2e

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // to play the newer relay's migration
)

// A backup taken while jobs are being created and run restores into a fresh
// data directory, and a relay started on it has the original's CA and jobs
// and an audit log that patchbay audit verify accepts. Restore refuses the data directory of a
// running relay and a non-empty one without --force.
func TestBackupUnderLoadRestores(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	f := newPluginFleet(t)
	cli, target := f.cli, "id="+f.agent.ID
	cli.publish(t, f.good, bin("plugins/testplugin"))

	// Load: jobs created one after another, each run by the agent.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, failures := 0, []string{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, errOut, err := cli.Try("run", "testplugin", "--target", target, "--param", "mode=echo", "--param", "text=load")
			mu.Lock()
			if err != nil {
				failures = append(failures, errOut)
			} else {
				created++
			}
			mu.Unlock()
		}
	}()
	jobs := func() int { mu.Lock(); defer mu.Unlock(); return created }
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, 60*time.Second, "the load to create 3 jobs", func() bool { return jobs() >= 3 })

	// And one job in the middle of its fix while the backup is taken.
	count := filepath.Join(t.TempDir(), "count")
	long := cli.startJob(t, "testplugin", "--target", target, "--param", "countfile="+count, "--param", "sleep=5s")
	waitFor(t, 30*time.Second, "the long fix to start", func() bool { return lines(t, count) == 1 })

	out := filepath.Join(t.TempDir(), "relay-backup.tar")
	atBackup := jobs()
	msg := run(t, nil, bin("patchbay-server"), "backup", "--data", f.relay.Dir, out)
	if !strings.Contains(msg, "backup written") {
		t.Fatalf("backup said %q", msg)
	}
	if j := cli.job(t, long); j.Final() {
		t.Logf("note: the long job ended (%s) before the backup finished", j.State)
	}
	waitFor(t, 60*time.Second, "the load to go on after the backup", func() bool { return jobs() > atBackup+1 })
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", st.Mode().Perm())
	}

	// Restore refuses the running relay's directory and a non-empty one.
	if _, errOut, err := try(nil, bin("patchbay-server"), "restore", "--data", f.relay.Dir, "--force", out); err == nil ||
		!strings.Contains(errOut, "relay.lock") {
		t.Fatalf("restore into a running relay's data directory: err %v, stderr %q; want a refusal naming relay.lock", err, errOut)
	}
	busy := filepath.Join(t.TempDir(), "busy")
	if err := os.MkdirAll(busy, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(busy, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := try(nil, bin("patchbay-server"), "restore", "--data", busy, out); err == nil || !strings.Contains(errOut, "not empty") {
		t.Fatalf("restore into a non-empty directory: err %v, stderr %q; want a refusal", err, errOut)
	}

	// Restore into a fresh directory and start a relay there.
	fresh := filepath.Join(t.TempDir(), "restored")
	run(t, nil, bin("patchbay-server"), "restore", "--data", fresh, out)
	r2 := &Relay{Dir: fresh, Addr: freePort(t), Heartbeat: "1s", t: t}
	r2.URL = "https://" + r2.Addr
	r2.Start()
	t.Cleanup(func() { r2.proc.stop(t) })
	r2.FP = strings.TrimSpace(run(t, nil, bin("patchbay-server"), "fingerprint", "--data", fresh))
	if r2.FP != f.relay.FP {
		t.Fatalf("restored CA fingerprint %s, want the original's %s", r2.FP, f.relay.FP)
	}
	cli2 := r2.Login(strings.TrimSpace(run(t, nil, bin("patchbay-server"), "admin-token", "--data", fresh)))
	verify := cli2.Run("audit", "verify")
	t.Logf("audit verify on the restored relay: %s", strings.TrimSpace(verify))
	if j := cli2.job(t, long); j.ID == "" {
		t.Errorf("the restored relay does not know the job running during the backup")
	}
	list := cli2.Run("jobs", "list")
	if n := strings.Count(list, "testplugin"); n < atBackup {
		t.Errorf("restored relay lists %d testplugin jobs, want at least the %d created before the backup:\n%s", n, atBackup, list)
	}
	mu.Lock()
	if len(failures) > 0 {
		t.Errorf("%d job creations failed during the load, first: %s", len(failures), failures[0])
	}
	mu.Unlock()
}

// A relay refuses to start on a database that a newer relay migrated, and
// says which versions and what to do.
func TestRelayRefusesNewerSchema(t *testing.T) {
	r := StartRelay(t)
	r.proc.stop(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(r.Dir, "patchbay.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cur int64
	if err := db.QueryRow(`SELECT MAX(version_id) FROM goose_db_version`).Scan(&cur); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied, tstamp) VALUES ($1, 1, $2)`, cur+1, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, errOut, err := try(nil, bin("patchbay-server"), "serve", "--data", r.Dir, "--listen", freePort(t))
	if err == nil {
		t.Fatal("the relay started on a database of a newer schema")
	}
	for _, want := range []string{fmt.Sprintf("schema version %d", cur+1), fmt.Sprintf("up to %d", cur), "restore a backup"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("relay's refusal %q does not say %q", errOut, want)
		}
	}
}
