package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func restoreCmd() *cobra.Command {
	var dataDir string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore IN",
		Short: "Restore a backup (patchbay-server backup) into a data directory",
		Long: `Restore the backup IN into the data directory --data: the SQLite database
and the data directory's files (CA and other keys, recordings). Then start
the relay on it: patchbay-server serve --data DIR.

It refuses a data directory that a running relay uses (serve holds
DATA/relay.lock while it runs; restore holds it too, so no relay starts on a
half-restored directory), and one that is not empty unless --force is given:
then the current content is moved aside, into DIR.before-restore-TIME next
to it, not deleted.

A backup of a relay on PostgreSQL holds the files only: restore the database
with pg_restore first (README: Backup and restore).`,
		Example: `  patchbay-server restore --data /var/lib/patchbay /var/backups/patchbay-2026-12-07.tar`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, n, aside, err := restoreBackup(args[0], dataDir, force)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if aside != "" {
				fmt.Fprintf(out, "moved the previous content of %s to %s\n", dataDir, aside)
			}
			fmt.Fprintf(out, "restored %d files from the backup of %s (relay %s) into %s\n", n, m.Created.Format(time.RFC3339), m.Version, dataDir)
			if m.Database == "postgres" {
				fmt.Fprintln(out, "the backup has no database (the relay used PostgreSQL): restore it with pg_restore, then start the relay with the same --db")
			} else {
				fmt.Fprintf(out, "database schema version %d; start the relay: patchbay-server serve --data %s\n", m.SchemaVersion, dataDir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir(), "data directory to restore into (created if missing)")
	cmd.Flags().BoolVar(&force, "force", false, "restore into a data directory that is not empty, moving its content aside (DIR.before-restore-TIME)")
	return cmd
}

// restoreBackup extracts the archive in into dataDir. It returns the
// archive's manifest, the number of files restored and where the previous
// content went (--force).
func restoreBackup(in, dataDir string, force bool) (m backupManifest, files int, aside string, err error) {
	f, err := os.Open(in)
	if err != nil {
		return m, 0, "", fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return m, 0, "", fmt.Errorf("restore: create %s: %w", dataDir, err)
	}
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return m, 0, "", fmt.Errorf("restore: %w", err)
	}
	defer lock.Close()
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return m, 0, "", fmt.Errorf("restore: %w", err)
	}
	var content []string
	for _, e := range entries {
		if e.Name() != lockFileName {
			content = append(content, e.Name())
		}
	}
	if len(content) > 0 && !force {
		return m, 0, "", fmt.Errorf("restore: %s is not empty (%d entries, e.g. %s): restore into a new directory, or pass --force to move its content aside first",
			dataDir, len(content), content[0])
	}
	tr := tar.NewReader(f)
	if m, err = readManifest(tr); err != nil {
		return m, 0, "", fmt.Errorf("restore: %s: %w", in, err)
	}
	// Extract next to the data directory's content, then move into place:
	// a broken archive leaves the data directory as it was.
	stage, err := os.MkdirTemp(dataDir, ".restoring-")
	if err != nil {
		return m, 0, "", fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(stage)
	if files, err = extract(tr, stage); err != nil {
		return m, 0, "", fmt.Errorf("restore: %s: %w", in, err)
	}
	if len(content) > 0 {
		aside = strings.TrimRight(filepath.Clean(dataDir), string(filepath.Separator)) + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Mkdir(aside, 0o700); err != nil {
			return m, 0, "", fmt.Errorf("restore: move the current content aside: %w", err)
		}
		for _, name := range content {
			if err := os.Rename(filepath.Join(dataDir, name), filepath.Join(aside, name)); err != nil {
				return m, 0, "", fmt.Errorf("restore: move %s aside to %s: %w (the rest is still in %s)", name, aside, err, dataDir)
			}
		}
	}
	staged, err := os.ReadDir(stage)
	if err != nil {
		return m, 0, "", fmt.Errorf("restore: %w", err)
	}
	for _, e := range staged {
		if err := os.Rename(filepath.Join(stage, e.Name()), filepath.Join(dataDir, e.Name())); err != nil {
			return m, 0, "", fmt.Errorf("restore: %w", err)
		}
	}
	syncDir(dataDir)
	return m, files, aside, nil
}

// readManifest reads and checks the archive's first entry.
func readManifest(tr *tar.Reader) (backupManifest, error) {
	var m backupManifest
	h, err := tr.Next()
	if err != nil || h.Name != backupManifestName {
		return m, fmt.Errorf("not a patchbay-server backup (no %s first)", backupManifestName)
	}
	if err := json.NewDecoder(io.LimitReader(tr, 64<<10)).Decode(&m); err != nil {
		return m, fmt.Errorf("%s: %w", backupManifestName, err)
	}
	if m.Format != backupFormat {
		return m, fmt.Errorf("backup format %d: this patchbay-server reads format %d (use the patchbay-server that wrote it)", m.Format, backupFormat)
	}
	return m, nil
}

// extract writes the archive's remaining entries under dir: regular files
// 0600, directories 0700; names that would leave dir are refused.
func extract(tr *tar.Reader, dir string) (int, error) {
	files := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return files, err
		}
		name := path.Clean(h.Name)
		if name == "." || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") || strings.Contains(h.Name, "\\") {
			return files, fmt.Errorf("entry %q: not a path inside the data directory", h.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return files, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return files, err
			}
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return files, err
			}
			_, err = io.Copy(out, tr)
			if err == nil {
				err = out.Sync()
			}
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return files, fmt.Errorf("%s: %w", name, err)
			}
			files++
		default:
			return files, fmt.Errorf("entry %q: type %c is not a file or directory", h.Name, h.Typeflag)
		}
	}
}
