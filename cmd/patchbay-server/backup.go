package main

import (
	"archive/tar"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	_ "modernc.org/sqlite" // the relay's SQLite driver, for VACUUM INTO

	"github.com/patchbay/patchbay/server/bus"
)

// A backup is one tar file (mode 0600): first backupManifest, then the
// SQLite database as "patchbay.db" (a consistent snapshot taken with
// VACUUM INTO, which reads one transaction of the live database, so the
// relay keeps serving), then every other file of the data directory with
// its path inside it: the CA, server and SSH CA keys, the TLS ticket key,
// the secrets key (server.SecretsKeyFile: the database's alert route and
// TOTP secrets are sealed with it), the relay ID of a tier relay, and the
// session recordings. Left out: the
// database's own files (the snapshot replaces them), the embedded NATS
// server's JetStream state (presence and bus traffic, rebuilt at start) and
// the relay's lock file. With a PostgreSQL --db the archive holds the files
// only: the database is backed up with pg_dump (README: Backup and restore).
const (
	backupManifestName = "patchbay-backup.json"
	backupDBName       = "patchbay.db"
	backupFormat       = 1
)

// backupManifest describes an archive; restore checks it.
type backupManifest struct {
	Format        int       `json:"format"`
	Created       time.Time `json:"created"`
	Version       string    `json:"relay_version"`
	Database      string    `json:"database"` // "sqlite" (in the archive) or "postgres" (not in it)
	SchemaVersion int64     `json:"schema_version,omitempty"`
}

// skipInBackup tells whether a data directory entry (slash path relative to
// it) stays out of a backup.
func skipInBackup(rel string) bool {
	switch rel {
	case backupDBName, backupDBName + "-wal", backupDBName + "-shm", backupDBName + "-journal", lockFileName:
		return true
	}
	return rel == bus.EmbeddedStoreDir || strings.HasPrefix(rel, bus.EmbeddedStoreDir+"/")
}

func backupCmd() *cobra.Command {
	var dataDir, dbURL string
	var noRecordings bool
	cmd := &cobra.Command{
		Use:   "backup OUT",
		Short: "Write a backup of the relay (database and data directory) to OUT, while it runs",
		Long: `Write a backup of the relay to OUT: one tar file, mode 0600, written to a
temporary file next to OUT and renamed over it once complete (an existing OUT
is replaced only by a complete backup). It holds a consistent snapshot of the
SQLite database (VACUUM INTO: the relay keeps serving while it is taken) and
the files of the data directory that a restore needs: the CA and server keys,
the SSH CA keys, the TLS ticket key, secrets.key (the database's alert route
and TOTP secrets are encrypted with it: the database is of no use without
it), the relay ID of a tier relay and the session recordings
(--no-recordings leaves those out). The embedded NATS
server's state (DATA/nats) is not kept: it is rebuilt at start.

The archive contains the relay's private keys: keep it as you keep the data
directory (encrypted, readable by the relay's operators only).

With --db postgres://... the archive holds the data directory's files only:
back the database up with pg_dump (README: Backup and restore).

Restore with: patchbay-server restore --data NEW-DIR OUT`,
		Example: `  patchbay-server backup --data /var/lib/patchbay /var/backups/patchbay-$(date +%F).tar`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, n, err := writeBackup(cmd.Context(), dataDir, dbURL, args[0], !noRecordings)
			if err != nil {
				return err
			}
			what := "database schema version " + fmt.Sprint(m.SchemaVersion)
			if m.Database == "postgres" {
				what = "no database: back up the PostgreSQL database with pg_dump"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup written to %s (%d files; %s)\n", args[0], n, what)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", defaultDataDir(), "data directory of the relay")
	f.StringVar(&dbURL, "db", "", "the relay's --db: a SQLite file (default: patchbay.db in --data), or postgres://... (then only the data directory's files are written)")
	f.BoolVar(&noRecordings, "no-recordings", false, "leave the session recordings (DATA/recordings) out")
	return cmd
}

// writeBackup writes the archive to out atomically and returns its
// manifest and the number of files in it.
func writeBackup(ctx context.Context, dataDir, dbURL, out string, recordings bool) (m backupManifest, files int, err error) {
	if st, err := os.Stat(dataDir); err != nil || !st.IsDir() {
		return m, 0, fmt.Errorf("backup: no data directory %s: give the relay's --data", dataDir)
	}
	m = backupManifest{Format: backupFormat, Created: time.Now().UTC(), Version: version, Database: "sqlite"}
	dbPath := filepath.Join(dataDir, backupDBName)
	switch {
	case strings.HasPrefix(dbURL, "postgres://"), strings.HasPrefix(dbURL, "postgresql://"):
		m.Database, dbPath = "postgres", ""
	case dbURL != "":
		dbPath = strings.TrimPrefix(strings.TrimPrefix(dbURL, "sqlite://"), "sqlite:")
	}
	outAbs, err := filepath.Abs(out)
	if err != nil {
		return m, 0, err
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(outAbs), ".patchbay-backup-")
	if err != nil {
		return m, 0, fmt.Errorf("backup: temporary directory next to %s: %w", out, err)
	}
	defer os.RemoveAll(tmpDir)
	snap := ""
	if dbPath != "" {
		if _, err := os.Stat(dbPath); err != nil {
			return m, 0, fmt.Errorf("backup: database %s: %w (give the relay's --data, and --db if it has one)", dbPath, err)
		}
		snap = filepath.Join(tmpDir, backupDBName)
		if m.SchemaVersion, err = snapshotSQLite(ctx, dbPath, snap); err != nil {
			return m, 0, err
		}
	}
	tmp := filepath.Join(tmpDir, "archive.tar")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return m, 0, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	mj, _ := json.MarshalIndent(m, "", "  ")
	if err := tw.WriteHeader(&tar.Header{Name: backupManifestName, Mode: 0o600, Size: int64(len(mj)), ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
		return m, 0, err
	}
	if _, err := tw.Write(mj); err != nil {
		return m, 0, err
	}
	if snap != "" {
		if err := addFile(tw, snap, backupDBName); err != nil {
			return m, 0, err
		}
		files++
	}
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dataDir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		abs, _ := filepath.Abs(path)
		if skipInBackup(rel) || abs == tmpDir || abs == outAbs || (!recordings && rel == "recordings") ||
			strings.HasPrefix(d.Name(), ".patchbay-backup-") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Name: rel + "/", Mode: 0o700, Typeflag: tar.TypeDir, ModTime: m.Created})
		}
		if !d.Type().IsRegular() {
			return nil // sockets, links: nothing a restore needs
		}
		files++
		return addFile(tw, path, rel)
	})
	if err != nil {
		return m, 0, fmt.Errorf("backup: %w", err)
	}
	if err := tw.Close(); err != nil {
		return m, 0, fmt.Errorf("backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		return m, 0, fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return m, 0, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, outAbs); err != nil {
		return m, 0, fmt.Errorf("backup: %w", err)
	}
	syncDir(filepath.Dir(outAbs))
	return m, files, nil
}

// snapshotSQLite copies the live database at src into dst with VACUUM INTO
// (one read transaction: consistent, and the relay's writers go on), checks
// the copy and returns its schema version.
func snapshotSQLite(ctx context.Context, src, dst string) (int64, error) {
	db, err := sql.Open("sqlite", "file:"+escapeSQLitePath(src)+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, fmt.Errorf("backup: open %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO $1`, dst); err != nil {
		return 0, fmt.Errorf("backup: snapshot %s (VACUUM INTO): %w", src, err)
	}
	snap, err := sql.Open("sqlite", "file:"+escapeSQLitePath(dst)+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer snap.Close()
	var check string
	if err := snap.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		return 0, fmt.Errorf("backup: the snapshot of %s fails its integrity check: %v %s", src, err, check)
	}
	var v sql.NullInt64
	if err := snap.QueryRowContext(ctx, `SELECT MAX(version_id) FROM goose_db_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("backup: %s is not a relay database (no schema version): %w", src, err)
	}
	return v.Int64, nil
}

func escapeSQLitePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// addFile appends the file at path to tw as name (mode 0600). A file that
// grows meanwhile (a recording being written) is cut at the size it had.
func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, st.Size()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
