package consent

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
)

// openBrowser asks the desktop to open url, best effort. On Linux and the
// BSDs it needs a display (DISPLAY or WAYLAND_DISPLAY) and xdg-open, which is
// started in the background by sh, so the browser it may start is neither
// the agent's child nor in its process group: the agent never waits for it
// and never kills it. open (macOS) and rundll32 (Windows) return at once.
func openBrowser(ctx context.Context, url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.CommandContext(ctx, "open", url)
	case "windows":
		cmd = exec.CommandContext(ctx, "rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errors.New("no display")
		}
		if _, err := exec.LookPath("xdg-open"); err != nil {
			return err
		}
		// The URL is an argument ($1), never part of the script.
		cmd = exec.CommandContext(ctx, "sh", "-c", `xdg-open "$1" </dev/null >/dev/null 2>&1 &`, "patchbay-open", url)
		detach(cmd)
	}
	return cmd.Run()
}
