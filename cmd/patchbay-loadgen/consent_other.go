//go:build !linux

package main

import (
	"context"
	"fmt"
	"strings"
)

// runConsent needs Linux: Xvfb, runuser and /proc.
func runConsent(context.Context, benchOptions, string) (*consentResults, error) {
	return nil, fmt.Errorf("consent: the consent part runs on Linux only (it drives %s and reads /proc)", strings.Join(consentTools, ", "))
}
