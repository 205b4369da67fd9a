package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/spf13/cobra"
)

func (a *app) knownFixesCmd() *cobra.Command {
	return group("known-fixes", "The team's knowledge base: symptoms and the fixes that work",
		`A known fix links a symptom to a catalog plugin or script that fixes it,
with its parameters and a description in Markdown. The symptom is a
failing check's name (--check; an alert's kind counts too, e.g.
agent_offline), and/or a pattern over error text (--pattern): a
case-insensitive substring, or with --regexp a Go regular expression
(RE2; at most 512 bytes, and too complex ones, e.g. nested large
repetitions, are refused). With both, both must match.

An open alert whose check or summary matches, and an incident whose
title, notes or linked alerts match, are offered the fix by patchbay alerts
list/show and patchbay incidents show, as the command that would run it:
  Known fix: NAME — patchbay run PLUGIN --target id=AGENT --param k=v
Nothing runs by itself. Known fixes are shared by the whole team; adding
and deleting them needs the technician role and is audited.`,
		`  patchbay known-fixes create spooler-restart --title "Restart the print spooler" \
      --pattern "print queue.*stuck" --regexp --plugin script --param name=restart-spooler \
      --description-file spooler.md
  patchbay known-fixes create disk-temp --check disk_space --plugin cacheclear --param scopes=temp
  patchbay known-fixes search spooler
  patchbay known-fixes show spooler-restart`,
		a.knownFixesCreateCmd(), a.knownFixesListCmd("list"), a.knownFixesListCmd("search"), a.knownFixesShowCmd(), a.knownFixesDeleteCmd())
}

func (a *app) knownFixesCreateCmd() *cobra.Command {
	var (
		output   outputFlag
		k        apiv1.KnownFix
		params   []string
		regexp   bool
		descFile string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --plugin PLUGIN [--param k=v]... (--check CHECK | --pattern TEXT [--regexp])... [--title T] [--description MD | --description-file F]",
		Short: "Add a known fix",
		Long: `Add a known fix (technician). NAME is 1 to 64 lower-case letters, digits,
'.', '_' or '-'. --plugin is what patchbay run runs (a plugin or a
script's name); --param its parameters. The symptom: --check and/or
--pattern (a substring, or a Go regexp with --regexp). Audited as
known-fix.create.`,
		Example: `  patchbay known-fixes create disk-temp --check disk_space --plugin cacheclear --param scopes=temp \
      --title "Clear temp files" --description "Frees **temp** space; safe during work hours."`,
		Args: oneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k.Name = args[0]
			if len(params) > 0 {
				k.Params = map[string]string{}
			}
			for _, p := range params {
				key, val, ok := strings.Cut(p, "=")
				if !ok || key == "" {
					return usageErrorf(cmd, "--param %q: use k=v", p)
				}
				k.Params[key] = val
			}
			if regexp {
				k.PatternKind = "regexp"
			}
			if descFile != "" {
				if k.Description != "" {
					return usageErrorf(cmd, "give --description or --description-file, not both")
				}
				b, err := os.ReadFile(descFile)
				if err != nil {
					return fmt.Errorf("--description-file: %w", err)
				}
				k.Description = string(b)
			}
			return a.withClient(func(c *client.Client) error {
				got, err := c.CreateKnownFix(cmd.Context(), k)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, got)
				}
				fmt.Fprintf(a.stdout, "Created known fix %s (%s).\n", clean(got.Name), clean(got.ID))
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&k.Plugin, "plugin", "", "the plugin or script that fixes it")
	f.StringArrayVar(&params, "param", nil, "parameter k=v for the plugin; repeatable")
	f.StringVar(&k.Check, "check", "", "symptom: the name of the failing check (or an alert kind)")
	f.StringVar(&k.Pattern, "pattern", "", "symptom: text in the alert summary or incident (case-insensitive substring)")
	f.BoolVar(&regexp, "regexp", false, "--pattern is a Go regular expression (case-insensitive)")
	f.StringVar(&k.Title, "title", "", "a line saying what it fixes")
	f.StringVar(&k.Description, "description", "", "how and when to use it (Markdown)")
	f.StringVar(&descFile, "description-file", "", "read the description from this Markdown file")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) knownFixesListCmd(verb string) *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "list [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List the known fixes",
		Long:    `List the known fixes, by name.`,
		Example: `  patchbay known-fixes list`,
		Args:    noArgs,
	}
	if verb == "search" {
		cmd = &cobra.Command{
			Use:   "search TEXT [-o table|json]",
			Short: "Search the known fixes",
			Long: `List the known fixes whose name, title, description, check or pattern
contains TEXT (case-insensitive).`,
			Example: `  patchbay known-fixes search spooler`,
			Args:    oneArg("TEXT"),
		}
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		q := ""
		if len(args) == 1 {
			q = args[0]
			if strings.TrimSpace(q) == "" {
				return usageErrorf(cmd, "TEXT is empty: patchbay known-fixes list lists them all")
			}
		}
		return a.withClient(func(c *client.Client) error {
			list, err := c.KnownFixes(cmd.Context(), q)
			if err != nil {
				return err
			}
			if output == formatJSON {
				return writeJSON(a.stdout, list)
			}
			t := newTable(a.stdout, "NAME", "CHECK", "PATTERN", "PLUGIN", "TITLE")
			for _, k := range list {
				pat := k.Pattern
				if k.PatternKind == "regexp" {
					pat = "/" + pat + "/"
				}
				t.row(k.Name, k.Check, pat, k.Plugin, k.Title)
			}
			return t.flush()
		})
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) knownFixesShowCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "show NAME [-o table|json]",
		Short:   "Show a known fix",
		Long:    `Show a known fix: its symptom, what it runs and its description. NAME may also be its ID.`,
		Example: `  patchbay known-fixes show spooler-restart`,
		Args:    oneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				k, err := c.KnownFix(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, k)
				}
				w := a.stdout
				fmt.Fprintf(w, "Known fix %s (%s)\n", clean(k.Name), clean(k.ID))
				if k.Title != "" {
					fmt.Fprintf(w, "  Title:   %s\n", clean(k.Title))
				}
				if k.Check != "" {
					fmt.Fprintf(w, "  Check:   %s\n", clean(k.Check))
				}
				if k.Pattern != "" {
					fmt.Fprintf(w, "  Pattern: %s (%s)\n", clean(k.Pattern), clean(k.PatternKind))
				}
				keys := make([]string, 0, len(k.Params))
				for key := range k.Params {
					keys = append(keys, key)
				}
				sort.Strings(keys)
				run := "patchbay run " + k.Plugin + " --target SELECTOR"
				for _, key := range keys {
					run += " --param " + key + "=" + k.Params[key]
				}
				fmt.Fprintf(w, "  Runs:    %s\n", clean(run))
				fmt.Fprintf(w, "  Created: %s by %s\n", fmtTime(k.CreatedAt), clean(k.CreatedBy))
				if k.Description != "" {
					fmt.Fprintln(w)
					for _, line := range strings.Split(k.Description, "\n") {
						fmt.Fprintf(w, "  %s\n", cleanLine(line))
					}
				}
				return nil
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) knownFixesDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a known fix",
		Long:    `Delete a known fix (technician). Incidents it resolved keep its name. Audited as known-fix.delete.`,
		Example: `  patchbay known-fixes delete spooler-restart`,
		Args:    oneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.DeleteKnownFix(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Deleted known fix %s.\n", clean(args[0]))
				return nil
			})
		},
	}
}
