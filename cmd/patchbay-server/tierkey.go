package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/server/tiersecrets"
)

func tierKeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tier-key",
		Short: "Make the key that seals a relay tier's CA in its database",
		Long: `The relays of a tier (--db postgres://...) share their CA, SSH CAs and TLS
session ticket key through the database, encrypted with AES-256-GCM under the
tier key. Make the key once, then give every relay of the tier a copy
(--tier-key-file, mode 0600). Keep a backup apart from the database's: without
the key the CA stored in the database is lost; with only the database, it is safe.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "new FILE",
		Short:   "Write a new random tier key to FILE (0600; never replaces one)",
		Example: `  patchbay-server tier-key new /etc/patchbay/tier.key`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s exists: a tier key is never replaced (the tier's secrets in the database are sealed with it); choose another FILE", path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			text, err := tiersecrets.NewKey()
			if err != nil {
				return err
			}
			key, err := tiersecrets.ParseKey(text)
			if err != nil {
				return err
			}
			if err := atomicfile.WriteSecret(path, text); err != nil {
				return fmt.Errorf("write tier key: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote tier key %s to %s: give every relay of the tier a copy (--tier-key-file) and keep a backup apart from the database's.\n", key.ID(), path)
			return nil
		},
	})
	return cmd
}
