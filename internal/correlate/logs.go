package correlate

import (
	"context"
	"sync"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/logpattern"
)

// The log comparison around a change (see logFeatures).
const (
	// logSeverity is the least severity read: WARN, as an OpenTelemetry
	// severity number.
	logSeverity = 13
	// logBefore is how far before a change its baseline of log lines
	// reaches; the window after is the error rate's (AfterWindow).
	logBefore = time.Hour
	// logLinesPerHour caps the lines read of one service, per hour of the
	// span read: beyond it the store samples them evenly, which keeps the
	// rates the comparison tests. Mining costs about a microsecond a line,
	// so a busy service costs tens of milliseconds, and a 15-minute window
	// still holds over a thousand lines.
	logLinesPerHour = 5000
	// logWorkers is how many services' lines are read and mined at once:
	// two, so that one service's lines are mined while the engine reads
	// the next one's.
	logWorkers = 2
)

// serviceLogs is one service's warning-and-worse log lines over the span
// its changes compare, mined once; err is set instead when they could not
// be read.
type serviceLogs struct {
	timeline *logpattern.Timeline
	err      error
}

// logWindows are the windows of c's comparison: the hour before it and
// [c, afterEnd), to the second, as the logs table's TimestampTime is.
func logWindows(c event.Change, afterEnd time.Time) (before, after logpattern.Window) {
	at := c.Time.Truncate(time.Second)
	return logpattern.Window{From: c.Time.Add(-logBefore).Truncate(time.Second), To: at},
		logpattern.Window{From: at, To: afterEnd.Truncate(time.Second)}
}

// loadLogs reads, for every service with a change that logFeatures
// compares (before the onset, with a window after it), its log lines over
// the union of those changes' windows, once, and mines them once. A
// service's changes are usually minutes apart, so their windows overlap
// and one read replaces two per change.
func (e *Engine) loadLogs(ctx context.Context, w *window, onset time.Time) map[string]*serviceLogs {
	spans := map[string]logpattern.Window{}
	for _, c := range w.changes {
		afterEnd := e.afterEnd(w, c)
		if c.Time.After(onset) || !afterEnd.After(c.Time) {
			continue
		}
		before, after := logWindows(c, afterEnd)
		sp, ok := spans[c.Service]
		if !ok || before.From.Before(sp.From) {
			sp.From = before.From
		}
		if !ok || after.To.After(sp.To) {
			sp.To = after.To
		}
		spans[c.Service] = sp
	}
	out := make(map[string]*serviceLogs, len(spans))
	var wg sync.WaitGroup
	sem := make(chan struct{}, logWorkers)
	for svc, sp := range spans {
		sl := &serviceLogs{}
		out[svc] = sl
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			limit := int(sp.To.Sub(sp.From).Hours()*logLinesPerHour) + 1
			lines, err := e.r.LogLines(ctx, svc, sp.From, sp.To, logSeverity, limit)
			if err != nil {
				sl.err = err
				return
			}
			ls := make([]logpattern.Line, len(lines))
			for i, l := range lines {
				ls[i] = logpattern.Line{Time: l.Time, Text: l.Body}
			}
			sl.timeline = logpattern.NewTimeline(ls, logpattern.Options{})
		})
	}
	wg.Wait()
	return out
}
