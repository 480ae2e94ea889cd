package store

import (
	"context"
	"strings"
	"time"
)

// ErrorSample is what a post-mortem shows of one error fingerprint beyond
// its counts: the in-app stack frames of its latest event that has them,
// innermost first, as the Sentry collector keeps them in the attribute
// sentry.frames ("module.function (file:line)", one a line). The errors
// table keeps no other trace of a stack: events from other sources have
// no frames, and Frames is then empty.
type ErrorSample struct {
	Service, Fingerprint string
	EventID              string
	Time                 time.Time
	Frames               []string
}

// errorSamplesQuery picks, per fingerprint, the latest event in the window
// that carries frames (argMax over the time). Reading only the window and
// the fingerprints asked keeps it to the granules of those minutes.
const errorSamplesQuery = `
SELECT service, fingerprint, argMax(id, time), max(time), argMax(attributes['sentry.frames'], time)
FROM errors FINAL
WHERE service IN {services:Array(String)} AND fingerprint IN {fingerprints:Array(String)}
  AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
  AND attributes['sentry.frames'] != ''
GROUP BY service, fingerprint
ORDER BY service, fingerprint`

// ErrorSamples returns, for each of fingerprints of services seen in
// [from, to) with stack frames, the frames of its latest such event. A
// fingerprint without framed events in the window has no entry.
func (s *Store) ErrorSamples(ctx context.Context, services, fingerprints []string, from, to time.Time) ([]ErrorSample, error) {
	if len(services) == 0 || len(fingerprints) == 0 {
		return nil, nil
	}
	var out []ErrorSample
	p := map[string]string{"services": ParamStrings(services), "fingerprints": ParamStrings(fingerprints), "from": ParamTime(from), "to": ParamTime(to)}
	err := s.query(ctx, "error_samples", errorSamplesQuery, p, func(r Rows) error {
		var e ErrorSample
		var frames string
		if err := r.Scan(&e.Service, &e.Fingerprint, &e.EventID, &e.Time, &frames); err != nil {
			return err
		}
		e.Time = e.Time.UTC()
		for _, f := range strings.Split(frames, "\n") {
			if f = strings.TrimSpace(f); f != "" {
				e.Frames = append(e.Frames, f)
			}
		}
		out = append(out, e)
		return nil
	})
	return out, err
}
