package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

func auditRec(actor, action string) audit.Record {
	return audit.Record{Actor: actor, Action: action, Target: "t", Detail: map[string]string{"k": action}}
}

// fill appends n records from 50 concurrent goroutines.
func fill(t *testing.T, s *Store, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	per := n / 50
	for g := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if _, err := s.AppendAudit(context.Background(), auditRec(fmt.Sprintf("agent:%d", g), fmt.Sprintf("a%d", i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestAppendAudit(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if seq, hash, err := s.AuditHead(ctx); err != nil || seq != 0 || hash != "" {
		t.Fatalf("empty head %d %q %v", seq, hash, err)
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != 0 {
		t.Fatalf("verify empty: %d %v", n, err)
	}
	at := time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.FixedZone("X", 7200))
	r1, err := s.AppendAudit(ctx, audit.Record{Time: at, Actor: "token:1 (admin)", Action: "token.create", Target: "tok-1",
		Detail: map[string]string{"uses": "5", "tags": "site=paris"}, Seq: 99, PrevHash: "junk", Hash: "junk"})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Seq != 1 || r1.PrevHash != "" || r1.Hash != r1.ComputeHash() || !r1.Time.Equal(at.Truncate(time.Microsecond)) || r1.Time.Location() != time.UTC {
		t.Fatalf("r1 %+v", r1)
	}
	before := time.Now().UTC().Add(-time.Second)
	r2, err := s.AppendAudit(ctx, audit.Record{Actor: "system", Action: "start", Detail: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Seq != 2 || r2.PrevHash != r1.Hash || r2.Time.Before(before) || r2.Detail != nil {
		t.Fatalf("r2 %+v", r2)
	}
	r3, err := s.AppendAudit(ctx, audit.Record{Actor: "bad\xffutf8", Action: "x", Detail: map[string]string{"k": "\xfe"}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAudit(ctx, 0, 0)
	if err != nil || !reflect.DeepEqual(list, []audit.Record{r1, r2, r3}) {
		t.Fatalf("list %+v, %v\nwant %+v", list, err, []audit.Record{r1, r2, r3})
	}
	if list, _ := s.ListAudit(ctx, 1, 1); len(list) != 1 || list[0].Seq != 2 {
		t.Fatalf("page %+v", list)
	}
	if seq, hash, _ := s.AuditHead(ctx); seq != 3 || hash != r3.Hash {
		t.Fatalf("head %d %q", seq, hash)
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != 3 {
		t.Fatalf("verify %d %v", n, err)
	}
}

func TestAuditConcurrentAndTamper(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)
	const total = 2500 // more than two pages
	fill(t, s, total)
	if n, err := s.VerifyAudit(ctx); err != nil || n != total {
		t.Fatalf("verify %d, %v", n, err)
	}
	db := rawDB(t, path)

	// wantChainErr checks VerifyAudit reports a *audit.ChainError at seq.
	wantChainErr := func(t *testing.T, seq int64) {
		t.Helper()
		n, err := s.VerifyAudit(ctx)
		var ce *audit.ChainError
		if !errors.As(err, &ce) || ce.Seq != seq {
			t.Fatalf("verify = %d, %v; want chain error at %d", n, err, seq)
		}
		if n != seq-1 {
			t.Fatalf("verified %d before the error, want %d", n, seq-1)
		}
	}
	exec := func(t *testing.T, q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("edited actor", func(t *testing.T) {
		var actor string
		if err := db.QueryRowContext(ctx, `SELECT actor FROM audit_log WHERE seq = 1234`).Scan(&actor); err != nil {
			t.Fatal(err)
		}
		exec(t, `UPDATE audit_log SET actor = $1 WHERE seq = 1234`, "system")
		wantChainErr(t, 1234)
		exec(t, `UPDATE audit_log SET actor = $1 WHERE seq = 1234`, actor)
		if _, err := s.VerifyAudit(ctx); err != nil {
			t.Fatalf("restored: %v", err)
		}
	})
	t.Run("edited detail", func(t *testing.T) {
		var detail string
		if err := db.QueryRowContext(ctx, `SELECT detail FROM audit_log WHERE seq = 7`).Scan(&detail); err != nil {
			t.Fatal(err)
		}
		exec(t, `UPDATE audit_log SET detail = '{"k":"a0","x":"y"}' WHERE seq = 7`)
		wantChainErr(t, 7)
		exec(t, `UPDATE audit_log SET detail = $1 WHERE seq = 7`, detail)
	})
	t.Run("deleted middle", func(t *testing.T) {
		exec(t, `CREATE TABLE saved AS SELECT * FROM audit_log WHERE seq = 1500`)
		exec(t, `DELETE FROM audit_log WHERE seq = 1500`)
		wantChainErr(t, 1500)
		exec(t, `INSERT INTO audit_log SELECT * FROM saved`)
		exec(t, `DROP TABLE saved`)
		if _, err := s.VerifyAudit(ctx); err != nil {
			t.Fatalf("restored: %v", err)
		}
	})
	t.Run("deleted last", func(t *testing.T) {
		exec(t, `DELETE FROM audit_log WHERE seq = $1`, total)
		wantChainErr(t, total)
	})
}
