package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/spf13/cobra"
)

func (a *app) inventoryCmd() *cobra.Command {
	return group("inventory", "Hardware and software inventory of agents",
		`Agents report their hardware (CPU, memory, disks, vendor, model, serial,
firmware), their last reboot, their pending updates (from patchinstall runs)
and their installed software (dpkg and rpm on
Linux, the uninstall registry keys on Windows, /Applications on macOS): at
connect, every 6 hours and when asked (inventory refresh). The software list
is sent only when it changed; the relay keeps a history of what was
installed, removed and upgraded.

Selectors can use the inventory, in agents list, run and the console:
software=NAME, software.version<V (with a software term: one package must
match both), memory<8GiB, disk.free<10% (see patchbay agents list --help).`,
		`  patchbay inventory show web-01
  patchbay inventory software openssl --version-lt 3.0.14 -o csv > openssl.csv
  patchbay inventory history web-01
  patchbay inventory refresh web-01
  patchbay agents list --target 'software=openssl,software.version<3.0.14'`,
		a.inventoryShowCmd(), a.inventorySoftwareCmd(), a.inventoryHistoryCmd(), a.inventoryRefreshCmd())
}

func (a *app) inventoryShowCmd() *cobra.Command {
	var output outputFlag
	var withSoftware bool
	cmd := &cobra.Command{
		Use:   "show AGENT [--software] [-o table|json]",
		Short: "Show an agent's hardware, last reboot, software count and pending updates",
		Long: `Show what an agent reported (viewer role): CPU, memory, disks with their
size and free space, vendor, model, serial and firmware (BIOS) version, last
reboot, how many packages it has, and its pending updates with the time of
the last check (as its last patchinstall run listed them: a patch policy, a
job, or a --dry-run; security updates first; with security_only, the check
lists security updates only). --software lists the packages too.
-o json prints the relay's inventory object (sizes in bytes, times in RFC
3339). Unknown fields are empty: serials need the agent to run as root, and
some machines (containers, most ARM boards) have no DMI data.

AGENT is the agent's ID, a unique prefix of it, or its hostname.`,
		Example: `  patchbay inventory show web-01
  patchbay inventory show web-01 --software
  patchbay inventory show web-01 -o json | jq .hardware.memory_bytes`,
		Args: oneArg("AGENT (ID, ID prefix or hostname)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				inv, err := c.Inventory(cmd.Context(), args[0], withSoftware)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, inv)
				}
				return writeInventory(a.stdout, inv, a.now())
			})
		},
	}
	cmd.Flags().BoolVar(&withSoftware, "software", false, "list the installed packages too")
	addOutputFlag(cmd, &output)
	return cmd
}

// writeInventory writes an inventory as "Key: value" lines, then the
// disks and (if present) the packages as tables.
func writeInventory(w io.Writer, inv apiv1.Inventory, now time.Time) error {
	h := inv.Hardware
	t := newTable(w)
	t.row("Agent:", inv.AgentID)
	t.row("Hostname:", inv.Hostname)
	t.row("OS:", strings.TrimSpace(inv.OS+" "+inv.OSVersion))
	cpu := h.CPUModel
	if h.CPUCount > 0 {
		cpu = strings.TrimSpace(fmt.Sprintf("%d x %s", h.CPUCount, cpu))
	}
	t.row("CPU:", cpu)
	t.row("Memory:", sizeOrEmpty(h.MemoryBytes))
	t.row("Vendor:", h.Vendor)
	t.row("Model:", h.Model)
	t.row("Serial:", h.Serial)
	t.row("Firmware:", h.Firmware)
	t.row("Last reboot:", withRel(now, inv.BootTime))
	sw := strconv.Itoa(inv.SoftwareCount)
	if inv.SoftwareAt != nil {
		sw += " (changed " + relTime(now, inv.SoftwareAt) + ")"
	}
	t.row("Packages:", sw)
	t.row("Reported:", withRel(now, inv.UpdatedAt))
	t.row("Updates:", updatesLine(inv.Updates))
	if u := inv.Updates; u != nil {
		t.row("Last check:", withRel(now, &u.CheckedAt))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(h.Disks) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "MOUNT", "SIZE", "FREE", "FREE%")
		for _, d := range h.Disks {
			pct := ""
			if d.Size > 0 {
				pct = fmt.Sprintf("%.1f%%", float64(d.Free)*100/float64(d.Size))
			}
			t.row(d.Mount, humanSize(d.Size), humanSize(d.Free), pct)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if u := inv.Updates; u != nil && len(u.List) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "UPDATE", "FROM", "TO", "SECURITY", "CATEGORY")
		for _, p := range u.List {
			name := p.Name
			if p.Arch != "" {
				name += " (" + p.Arch + ")"
			}
			t.row(name, p.From, p.Version, yesNo(p.Security), p.Category)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(inv.Software) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "NAME", "VERSION", "SOURCE")
		for _, p := range inv.Software {
			t.row(p.Name, p.Version, p.Source)
		}
		return t.flush()
	}
	return nil
}

func sizeOrEmpty(n int64) string {
	if n <= 0 {
		return ""
	}
	return humanSize(n)
}

// humanSize writes bytes in powers of 1024 (KiB, MiB, GiB, TiB).
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

// softwareFormat is -o for inventory software: table, json or csv.
type softwareFormat string

func (o *softwareFormat) String() string { return string(*o) }
func (o *softwareFormat) Type() string   { return "format" }
func (o *softwareFormat) Set(s string) error {
	switch s {
	case formatTable, formatJSON, "csv":
		*o = softwareFormat(s)
		return nil
	}
	return fmt.Errorf("want table, json or csv")
}

func (a *app) inventorySoftwareCmd() *cobra.Command {
	var versionLT string
	output := softwareFormat(formatTable)
	cmd := &cobra.Command{
		Use:   "software NAME [--version-lt V] [-o table|json|csv]",
		Short: "Show which agents have a package, and which version",
		Long: `List the agents of the sites you reach that have package NAME installed
(viewer role), with its version: one line per agent and version (an agent
with two kernels has two lines). NAME compares case-insensitively with the
name the package manager reports (dpkg and rpm names; on Windows the
DisplayName of the uninstall key; on macOS the application's name).

--version-lt keeps the versions before V, compared in Debian order
(1.0~rc1 < 1.0 < 1.0a < 1.0.1 < 1.0.10; an epoch "1:" counts first).
-o csv writes a header and one row per line (agent_id, hostname, site,
name, version, source), for spreadsheets: cells that a spreadsheet would
run as a formula get a leading '.`,
		Example: `  patchbay inventory software openssl
  patchbay inventory software openssl --version-lt 3.0.14
  patchbay inventory software firefox -o csv > firefox.csv`,
		Args: oneArg("NAME (a package name)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				hs, err := c.SoftwareHolders(cmd.Context(), args[0], versionLT)
				if err != nil {
					return err
				}
				switch output {
				case formatJSON:
					return writeJSON(a.stdout, hs)
				case "csv":
					return writeHoldersCSV(a.stdout, hs)
				}
				if len(hs) == 0 {
					fmt.Fprintf(a.stderr, "No agent reports package %s%s.\n", clean(args[0]), map[bool]string{true: " before version " + clean(versionLT)}[versionLT != ""])
					return nil
				}
				t := newTable(a.stdout, "AGENT", "HOSTNAME", "SITE", "NAME", "VERSION", "SOURCE")
				for _, h := range hs {
					t.row(h.AgentID, h.Hostname, h.Site, h.Name, h.Version, h.Source)
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&versionLT, "version-lt", "", "only versions before this one (Debian order)")
	cmd.Flags().VarP(&output, "output", "o", "output format: table, json or csv")
	return cmd
}

// csvCell keeps a spreadsheet from running a cell as a formula.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func writeHoldersCSV(w io.Writer, hs []apiv1.SoftwareHolding) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"agent_id", "hostname", "site", "name", "version", "source"})
	for _, h := range hs {
		cw.Write([]string{h.AgentID, csvCell(h.Hostname), csvCell(h.Site), csvCell(h.Name), csvCell(h.Version), csvCell(h.Source)})
	}
	cw.Flush()
	return cw.Error()
}

func (a *app) inventoryHistoryCmd() *cobra.Command {
	var output outputFlag
	var limit int
	cmd := &cobra.Command{
		Use:   "history AGENT [--limit N] [-o table|json]",
		Short: "Show an agent's software changes",
		Long: `Show what changed in an agent's software, newest first (viewer role):
installed, removed, and upgraded (the version changed, up or down) with the
old and new version. An agent's first list is its baseline and
records no changes.`,
		Example: `  patchbay inventory history web-01
  patchbay inventory history web-01 -o json | jq '.[] | select(.change=="upgraded")'`,
		Args: oneArg("AGENT (ID, ID prefix or hostname)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				hist, err := c.SoftwareHistory(cmd.Context(), args[0], limit)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, hist)
				}
				if len(hist) == 0 {
					fmt.Fprintln(a.stderr, "No software changes recorded for this agent.")
					return nil
				}
				t := newTable(a.stdout, "AT", "CHANGE", "NAME", "OLD", "NEW", "SOURCE")
				for _, h := range hist {
					t.row(fmtTime(h.At), h.Change, h.Name, h.OldVersion, h.NewVersion, h.Source)
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 1000, "at most this many changes")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) inventoryRefreshCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "refresh AGENT",
		Short: "Ask a connected agent to report its inventory now",
		Long: `Ask an agent to collect and report its inventory now (technician role),
software included even if unchanged. The agent must be connected: in a tier of
relays, the relay you reach passes the request on to the one that holds the
agent. The request is audited (agent.inventory_refresh); the report arrives a
few seconds later (inventory show).`,
		Example: `  patchbay inventory refresh web-01`,
		Args:    oneArg("AGENT (ID, ID prefix or hostname)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.RefreshInventory(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Asked %s to report its inventory; see patchbay inventory show %s in a few seconds.\n", clean(args[0]), shellQuote(clean(args[0])))
				return nil
			})
		},
	}
}

// updatesLine sums up pending updates: "12 pending (3 security), apt",
// "none pending, apt", or "never checked (run patchinstall)".
func updatesLine(u *apiv1.Updates) string {
	if u == nil {
		return "never checked (a patchinstall run lists them: patchbay jobs create patchinstall --dry-run)"
	}
	s := "none pending"
	if u.Pending > 0 {
		s = fmt.Sprintf("%d pending", u.Pending)
	}
	if u.Security != nil && u.Pending > 0 {
		s += fmt.Sprintf(" (%d security)", *u.Security)
	}
	if u.SecurityOnly {
		s += ", security updates only"
	}
	return s + ", " + u.Manager
}
