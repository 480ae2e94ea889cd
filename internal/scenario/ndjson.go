package scenario

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// WriteNDJSON writes the scenario's records into dir, created if missing, as
// one file per kind named after it (changes.ndjson, errors.ndjson,
// logs.ndjson, metrics.ndjson, services.ndjson): one JSON object per line
// with the event types' json tags, times in RFC 3339 UTC with milliseconds.
func (s *Scenario) WriteNDJSON(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create scenario directory: %w", err)
	}
	b := &s.Batch
	files := []struct {
		kind event.Kind
		n    int
		rec  func(i int) any
	}{
		{event.KindChanges, len(b.Changes), func(i int) any { return changeJSON{jsonTime(b.Changes[i].Time), &b.Changes[i]} }},
		{event.KindErrors, len(b.Errors), func(i int) any { return errorJSON{jsonTime(b.Errors[i].Time), &b.Errors[i]} }},
		{event.KindLogs, len(b.Logs), func(i int) any { return logJSON{jsonTime(b.Logs[i].Time), &b.Logs[i]} }},
		{event.KindMetrics, len(b.Metrics), func(i int) any { return metricJSON{jsonTime(b.Metrics[i].Time), &b.Metrics[i]} }},
		{event.KindServices, len(b.Services), func(i int) any { return serviceJSON{jsonTime(b.Services[i].Time), &b.Services[i]} }},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, string(f.kind)+".ndjson"), f.n, f.rec); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes n records, one JSON object a line.
func writeFile(path string, n int, rec func(i int) any) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range n {
		if err := enc.Encode(rec(i)); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// jsonTime marshals as RFC 3339 in UTC with exactly three fractional digits,
// the format the ingest API documents.
type jsonTime time.Time

// MarshalJSON implements json.Marshaler.
func (t jsonTime) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(`"2006-01-02T15:04:05.000Z"`))
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	return append(b, '"'), nil
}

// The wrappers below marshal a record with its Time replaced by a jsonTime:
// a field at a shallower depth hides the embedded one of the same name.
type (
	changeJSON struct {
		Time jsonTime `json:"time"`
		*event.Change
	}
	errorJSON struct {
		Time jsonTime `json:"time"`
		*event.ErrorEvent
	}
	logJSON struct {
		Time jsonTime `json:"time"`
		*event.LogRecord
	}
	metricJSON struct {
		Time jsonTime `json:"time"`
		*event.MetricPoint
	}
	serviceJSON struct {
		Time jsonTime `json:"time"`
		*event.Service
	}
)
