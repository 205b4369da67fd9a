package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/agent/trust"
	"github.com/patchbay/patchbay/plugins/signature"
)

func newTrustCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "trust",
		Short: "Manage who may sign the plugins and scripts this agent runs",
		Long: `The agent runs a plugin or script only if its signature (OpenSSH SSHSIG, namespace
patchbay-plugin) is by a key in DATA/allowed_signers, an OpenSSH allowed_signers file.
The relay has no way to change this file: a compromised relay cannot make the agent run
code nobody trusted. These commands edit it locally (run them as the agent's user, or
root); the running agent reads it before every run.

The file is the same format ssh-keygen -Y verify uses, so you may also edit it by hand.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	c.AddCommand(newTrustAddCmd(), newTrustListCmd(), newTrustRemoveCmd())
	return c
}

func newTrustAddCmd() *cobra.Command {
	var dir, principal string
	var releases bool
	cmd := &cobra.Command{
		Use:   "add --principal NAME [--release] PUBKEY_FILE",
		Short: "Trust a signer's public key",
		Long: `Add a signer: PUBKEY_FILE is an OpenSSH public key (the .pub next to the signing key,
e.g. id_ed25519.pub), or - for standard input. NAME identifies the person or team in logs
and run results (e.g. alice@example.com). The key is trusted for namespace patchbay-plugin only,
unless --release also trusts it to sign agent releases (namespace patchbay-release): the
SHA256SUMS of a self-update (patchbay agents upgrade), which this agent installs only when
a key trusted for releases signed it.`,
		Example: `  sudo patchbay-agent trust add --principal secops@example.com secops_signing.pub
  sudo patchbay-agent trust add --principal releases@example.com --release release_signing.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var key []byte
			var err error
			if args[0] == "-" {
				key, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
			} else {
				key, err = os.ReadFile(args[0])
			}
			if err != nil {
				return fmt.Errorf("read public key: %w", err)
			}
			ns := []string{signature.Namespace}
			if releases {
				ns = append(ns, signature.ReleaseNamespace)
			}
			if err := trust.Add(dir, principal, key, ns...); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "trusted %s for namespace %s in %s\n", principal, strings.Join(ns, ","), trust.Path(dir))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", defaultDataDir(), dataHelp)
	cmd.Flags().StringVar(&principal, "principal", "", "who the key belongs to, e.g. alice@example.com (required)")
	cmd.Flags().BoolVar(&releases, "release", false, "also trust the key to sign agent releases (namespace patchbay-release) for self-updates")
	cmd.MarkFlagRequired("principal")
	return cmd
}

func newTrustListCmd() *cobra.Command {
	var dir, output string
	cmd := &cobra.Command{
		Use:   "list [-o table|json]",
		Short: "List trusted signers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := trust.List(dir)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch output {
			case "json":
				if entries == nil {
					entries = []trust.Entry{}
				}
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(entries)
			case "table":
				if len(entries) == 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "no trusted signers in %s: this agent runs no plugin until you add one (patchbay-agent trust add)\n", trust.Path(dir))
					return nil
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PRINCIPAL\tKEY TYPE\tFINGERPRINT\tNAMESPACES\tCOMMENT")
				for _, e := range entries {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Principal, e.KeyType, e.Fingerprint, strings.Join(e.Namespaces, ","), e.Comment)
				}
				return tw.Flush()
			}
			return fmt.Errorf("-o %q: want table or json", output)
		},
	}
	cmd.Flags().StringVar(&dir, "data", defaultDataDir(), dataHelp)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func newTrustRemoveCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "remove PRINCIPAL|FINGERPRINT",
		Short:   "Stop trusting a signer",
		Example: "  sudo patchbay-agent trust remove alice@example.com\n  sudo patchbay-agent trust remove SHA256:Vq3...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := trust.Remove(dir, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d signer line(s) from %s\n", n, trust.Path(dir))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", defaultDataDir(), dataHelp)
	return cmd
}
