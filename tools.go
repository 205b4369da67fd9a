//go:build tools

// Package tools pins modules that the build uses before any package imports them.
package tools

import (
	_ "github.com/google/uuid"
	_ "github.com/gorilla/websocket"
	_ "github.com/pressly/goose/v3"
	_ "github.com/rs/zerolog"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/net/nettest"
	_ "golang.org/x/term"
	_ "modernc.org/sqlite"
)
