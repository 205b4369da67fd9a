package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

func TestNewDBAndClose(t *testing.T) {
	if os.Getenv(EnvURL) != "" {
		t.Setenv(EnvURL, "") // this test is about the server it starts
	}
	ctx := context.Background()
	s := New()
	var urls []string
	t.Run("databases", func(t *testing.T) {
		for i := range 2 {
			url := s.NewDB(t)
			urls = append(urls, url)
			cfg, err := pgx.ParseConfig(url)
			if err != nil {
				t.Fatal(err)
			}
			db := stdlib.OpenDB(*cfg)
			defer db.Close()
			if _, err := db.ExecContext(ctx, `CREATE TABLE t (n INTEGER)`); err != nil {
				t.Fatalf("database %d: %v", i, err) // each database is new and empty
			}
		}
		if urls[0] == urls[1] {
			t.Fatalf("the same database twice: %s", urls[0])
		}
	})
	dir := s.dir
	if dir == "" {
		t.Fatal("no server directory")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", dir, err)
	}
	// The server is gone: connecting fails.
	cfg, err := pgx.ParseConfig(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		conn.Close(ctx)
		t.Fatal("the server still answers after Close")
	}
}

func TestMissingBinariesNamed(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findInitdb(filepath.Join(t.TempDir(), "*", "bin", "initdb"))
	if err == nil || !strings.Contains(err.Error(), "initdb") || !strings.Contains(err.Error(), "Debian package postgresql") {
		t.Fatalf("err = %v; want it to name initdb and the Debian package postgresql", err)
	}
}
