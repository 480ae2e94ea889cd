// Package wait provides Sleep, a pause that a context can end early: the
// pollers' intervals and the webhook retries' backoff use it, so that a
// shutdown never waits out a sleep.
package wait

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx ends; it returns ctx's error in that case
// and nil after a full wait. A d of 0 or less returns at once (ctx's
// error, if it has ended).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
