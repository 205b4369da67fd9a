package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/patchbay/patchbay/agent/desktop"
)

// desktopFlags are run's remote desktop settings. Like the consent flags
// they are saved, in DATA/desktop.json, when given.
type desktopFlags struct {
	fs                       *pflag.FlagSet
	display, xauthority, vnc string
}

func (d *desktopFlags) register(f *pflag.FlagSet) {
	d.fs = f
	f.StringVar(&d.display, "desktop-display", "", "remote desktop: the X display x11vnc shows (default: the agent's $DISPLAY, else :0); saved in DATA/desktop.json as desktop_display")
	f.StringVar(&d.xauthority, "desktop-xauthority", "", "remote desktop: the X authority file of that display, e.g. /run/user/1000/gdm/Xauthority (default: none, or the agent's $XAUTHORITY); saved as desktop_xauthority")
	f.StringVar(&d.vnc, "desktop-vnc", "", "remote desktop: the loopback address of this machine's own VNC server, e.g. 127.0.0.1:5900 (Windows: TightVNC or UltraVNC service; macOS: Screen Sharing); no x11vnc is started; \"\" goes back to x11vnc; saved as desktop_vnc")
}

// config loads DATA/desktop.json, applies the flags given and saves the
// result when anything changed.
func (d *desktopFlags) config(dir string) (desktop.Config, error) {
	c, err := desktop.LoadConfig(dir)
	if err != nil {
		return c, err
	}
	changed := false
	for _, f := range []struct {
		name string
		val  string
		dst  *string
	}{{"desktop-display", d.display, &c.Display}, {"desktop-xauthority", d.xauthority, &c.XAuthority}, {"desktop-vnc", d.vnc, &c.VNC}} {
		if d.fs != nil && d.fs.Changed(f.name) {
			*f.dst, changed = f.val, true
		}
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("--desktop-*: %w", err)
	}
	if changed {
		if err := desktop.SaveConfig(dir, c); err != nil {
			return c, err
		}
	}
	return c, nil
}
