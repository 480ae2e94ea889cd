package postmortem

import (
	"context"
	"time"
)

// SetSleep replaces the wait between webhook attempts, so that tests of
// the retries do not wait.
func SetSleep(a *Attacher, f func(context.Context, time.Duration) error) { a.sleep = f }

// SetClock replaces the handler's clock, which ages its live pages.
func SetClock(h *Handler, now func() time.Time) { h.now = now }

// SetMaxPages bounds the handler's live pages, so that eviction can be
// tested with a few.
func SetMaxPages(h *Handler, n int) { h.maxPages = n }
