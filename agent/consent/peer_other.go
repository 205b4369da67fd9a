//go:build !linux

package consent

import "net/http"

// peerUser cannot tell who opened the connection on this system.
func peerUser(*http.Request) string { return webUser }
