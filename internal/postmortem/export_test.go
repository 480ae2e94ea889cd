package postmortem

import (
	"context"
	"time"
)

// SetSleep replaces the wait between webhook attempts, so that tests of
// the retries do not wait.
func SetSleep(a *Attacher, f func(context.Context, time.Duration) error) { a.sleep = f }
