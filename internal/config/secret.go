package config

import (
	"github.com/correlator/correlator/internal/duration"
	"github.com/correlator/correlator/internal/secret"
)

// Secret is a string that must not be shown; see package secret.
type Secret = secret.Secret

const redacted = secret.Redacted

// Duration is a time.Duration written as a Go duration string; see
// package duration.
type Duration = duration.Duration
