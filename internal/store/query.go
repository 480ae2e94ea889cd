package store

import (
	"context"
	"fmt"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// query runs a named read and times it.
func (s *Store) query(ctx context.Context, name, q string, params map[string]string, scan func(Rows) error) error {
	start := time.Now()
	s.record(ctx, name, q, params)
	rows, err := s.eng.Query(ctx, q, params)
	if err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("query %s: %w", name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	s.metrics.observeQuery(name, time.Since(start))
	return nil
}

const topologyQuery = `SELECT service, depends_on FROM services FINAL ORDER BY service`

// Topology returns each known service's direct dependencies.
func (s *Store) Topology(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	err := s.query(ctx, "topology", topologyQuery, nil, func(r Rows) error {
		var svc string
		var deps []string
		if err := r.Scan(&svc, &deps); err != nil {
			return err
		}
		out[svc] = deps
		return nil
	})
	return out, err
}

const changesQuery = `
SELECT ` + changeReadColumns + `
FROM changes FINAL
WHERE service IN {services:Array(String)}
  AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
ORDER BY time, id`

// Changes returns the changes of the services in [from, to), oldest first.
func (s *Store) Changes(ctx context.Context, services []string, from, to time.Time) ([]event.Change, error) {
	var out []event.Change
	p := map[string]string{"services": ParamStrings(services), "from": ParamTime(from), "to": ParamTime(to)}
	err := s.query(ctx, "changes", changesQuery, p, func(r Rows) error {
		c, err := scanChange(r)
		out = append(out, c)
		return err
	})
	return out, err
}

// changeReadColumns are the columns scanChange reads, in its order.
const changeReadColumns = `id, time, kind, service, environment, version, previous_version, commit, author, title, url, source, attributes`

// scanChange reads one row of changeReadColumns.
func scanChange(r Rows) (event.Change, error) {
	var c event.Change
	var kind string
	if err := r.Scan(&c.ID, &c.Time, &kind, &c.Service, &c.Environment, &c.Version, &c.PreviousVersion,
		&c.Commit, &c.Author, &c.Title, &c.URL, &c.Source, &c.Attributes); err != nil {
		return c, err
	}
	c.Kind = event.ChangeKind(kind)
	c.Time = c.Time.UTC()
	return c, nil
}

// Bucket is one service's count in one minute.
type Bucket struct {
	Service string
	Minute  time.Time
	// Count is the number of stored records; Estimate corrects it for
	// sampling (each record counts 1/sample_rate).
	Count    uint64
	Estimate float64
}

const errorMinutesQuery = `
SELECT service, toStartOfMinute(time) AS minute, count() AS n, sum(1 / sample_rate) AS est
FROM errors FINAL
WHERE service IN {services:Array(String)}
  AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
GROUP BY service, minute
ORDER BY service, minute`

// ErrorsPerMinute counts error events per service and minute in [from, to).
func (s *Store) ErrorsPerMinute(ctx context.Context, services []string, from, to time.Time) ([]Bucket, error) {
	p := map[string]string{"services": ParamStrings(services), "from": ParamTime(from), "to": ParamTime(to)}
	return s.buckets(ctx, "errors_per_minute", errorMinutesQuery, p)
}

// buckets runs a query whose rows are (service, minute, count, estimate).
func (s *Store) buckets(ctx context.Context, name, q string, p map[string]string) ([]Bucket, error) {
	var out []Bucket
	err := s.query(ctx, name, q, p, func(r Rows) error {
		var b Bucket
		if err := r.Scan(&b.Service, &b.Minute, &b.Count, &b.Estimate); err != nil {
			return err
		}
		b.Minute = b.Minute.UTC()
		out = append(out, b)
		return nil
	})
	return out, err
}

const metricMinutesQuery = `
SELECT service, toStartOfMinute(time) AS minute, count() AS n, sum(value) AS total
FROM metric_points FINAL
WHERE service IN {services:Array(String)} AND name = {name:String}
  AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
GROUP BY service, minute
ORDER BY service, minute`

// MetricPerMinute sums the points of metric name per service and minute in
// [from, to) (Estimate holds the sum, Count the number of points).
func (s *Store) MetricPerMinute(ctx context.Context, name string, services []string, from, to time.Time) ([]Bucket, error) {
	p := map[string]string{"services": ParamStrings(services), "name": ParamString(name), "from": ParamTime(from), "to": ParamTime(to)}
	return s.buckets(ctx, "metric_per_minute", metricMinutesQuery, p)
}

// Fingerprint summarises one error fingerprint of one service.
type Fingerprint struct {
	Service, Fingerprint, Type, Message, Release string
	FirstSeen, LastSeen                          time.Time
	Count                                        uint64
}

// newFingerprintsQuery finds the new fingerprints in the rollup (a week
// of days is a few rows per fingerprint) and reads only those, only in the
// window, from errors: FINAL there makes the counts exact, which the
// rollup's are not. A fingerprint is new when no event of it lies in
// [since, from): no rollup day has its first event before from and its
// last at or after since. That is exact as long as since and from fall on
// different days (see NewFingerprints). Every event of a new fingerprint
// since since lies in the window, so the window's aggregates are its
// aggregates since since. GLOBAL IN: in a cluster the set is built once,
// from every shard's rollup rows, and sent to the shards.
const newFingerprintsQuery = `
SELECT service, fingerprint, any(type), any(message), argMin(release, time), min(time) AS first_seen, max(time), count()
FROM errors FINAL
WHERE service IN {services:Array(String)}
  AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
  AND (service, fingerprint) GLOBAL IN (
    SELECT service, fingerprint
    FROM error_fingerprints
    WHERE service IN {services:Array(String)}
      AND day >= toDate({since:DateTime64(3, 'UTC')}) AND day <= toDate({to:DateTime64(3, 'UTC')})
    GROUP BY service, fingerprint
    HAVING countIf(first_seen < {from:DateTime64(3, 'UTC')} AND last_seen >= {since:DateTime64(3, 'UTC')}) = 0)
GROUP BY service, fingerprint
ORDER BY first_seen, service, fingerprint`

// newFingerprintsScanQuery answers NewFingerprints from the events alone,
// for lookbacks the daily rollup cannot resolve.
const newFingerprintsScanQuery = `
SELECT service, fingerprint, any(type), any(message), argMin(release, time), min(time) AS first_seen, max(time), count()
FROM errors FINAL
WHERE service IN {services:Array(String)}
  AND time >= {since:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
GROUP BY service, fingerprint
HAVING first_seen >= {from:DateTime64(3, 'UTC')}
ORDER BY first_seen, service, fingerprint`

// NewFingerprints returns the fingerprints of the services first seen in
// [from, to), where "first" looks back to since, in the order they were
// first seen.
func (s *Store) NewFingerprints(ctx context.Context, services []string, since, from, to time.Time) ([]Fingerprint, error) {
	var out []Fingerprint
	p := map[string]string{"services": ParamStrings(services), "since": ParamTime(since), "from": ParamTime(from), "to": ParamTime(to)}
	name, q := "new_fingerprints", newFingerprintsQuery
	if sameDay(since, from) {
		name, q = "new_fingerprints_scan", newFingerprintsScanQuery
	}
	err := s.query(ctx, name, q, p, func(r Rows) error {
		var f Fingerprint
		if err := r.Scan(&f.Service, &f.Fingerprint, &f.Type, &f.Message, &f.Release, &f.FirstSeen, &f.LastSeen, &f.Count); err != nil {
			return err
		}
		f.FirstSeen, f.LastSeen = f.FirstSeen.UTC(), f.LastSeen.UTC()
		out = append(out, f)
		return nil
	})
	return out, err
}

// sameDay reports whether a and b fall on the same UTC day. A rollup row
// covering a whole day cannot tell whether its events before b were also
// after a, so lookbacks that start and end on one day read the events.
func sameDay(a, b time.Time) bool {
	ya, ma, da := a.UTC().Date()
	yb, mb, db := b.UTC().Date()
	return ya == yb && ma == mb && da == db
}

// countQueries count the distinct records of each table, as a reader sees
// them (deduplicated). Keyed by table name, the closed set of tables.
var countQueries = map[string]string{
	"changes":       "SELECT count() FROM changes FINAL",
	"errors":        "SELECT count() FROM errors FINAL",
	"otel_logs":     "SELECT count() FROM otel_logs FINAL",
	"metric_points": "SELECT count() FROM metric_points FINAL",
	"services":      "SELECT count() FROM services FINAL",
}

// Count returns the number of distinct records in table (changes, errors,
// otel_logs, metric_points or services).
func (s *Store) Count(ctx context.Context, table string) (uint64, error) {
	q, ok := countQueries[table]
	if !ok {
		return 0, fmt.Errorf("count: unknown table %q", table)
	}
	var n uint64
	err := s.query(ctx, "count_"+table, q, nil, func(r Rows) error { return r.Scan(&n) })
	return n, err
}

// MetricBucket is one metric's aggregate in one minute for one service and
// one series key: the series' "version" label, else its "instance" label,
// else "region=" and its "region" label, else "" (service-level series). Sum adds the points (counts), Avg and Max
// summarise gauges such as latency, Points counts them.
type MetricBucket struct {
	Service, Name, Key string
	Minute             time.Time
	Sum, Avg, Max      float64
	Points             uint64
}

const metricKeyedQuery = `
SELECT service, name, multiIf(labels['version'] != '', labels['version'], labels['instance'] != '', labels['instance'], labels['region'] != '', concat('region=', labels['region']), '') AS key,
       toStartOfMinute(time) AS minute, sum(value), avg(value), max(value), count()
FROM metric_points FINAL
WHERE service IN {services:Array(String)} AND name IN {names:Array(String)}
  AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
GROUP BY service, name, key, minute
ORDER BY service, name, key, minute`

// MetricsByKey aggregates the named metrics of the services per minute and
// series key (version or instance) in [from, to): the canary comparison
// reads new-version series against old-version ones from it.
func (s *Store) MetricsByKey(ctx context.Context, services, names []string, from, to time.Time) ([]MetricBucket, error) {
	var out []MetricBucket
	p := map[string]string{"services": ParamStrings(services), "names": ParamStrings(names), "from": ParamTime(from), "to": ParamTime(to)}
	err := s.query(ctx, "metrics_by_key", metricKeyedQuery, p, func(r Rows) error {
		var b MetricBucket
		if err := r.Scan(&b.Service, &b.Name, &b.Key, &b.Minute, &b.Sum, &b.Avg, &b.Max, &b.Points); err != nil {
			return err
		}
		b.Minute = b.Minute.UTC()
		out = append(out, b)
		return nil
	})
	return out, err
}

const allErrorMinutesQuery = `
SELECT service, toStartOfMinute(time) AS minute, count() AS n, sum(1 / sample_rate) AS est
FROM errors FINAL
WHERE time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
GROUP BY service, minute
ORDER BY service, minute`

// AllErrorsPerMinute counts error events of every service per minute in
// [from, to): symptoms outside a change's reach point away from it.
func (s *Store) AllErrorsPerMinute(ctx context.Context, from, to time.Time) ([]Bucket, error) {
	p := map[string]string{"from": ParamTime(from), "to": ParamTime(to)}
	return s.buckets(ctx, "all_errors_per_minute", allErrorMinutesQuery, p)
}

// LogLine is one log line: when it was written, and its body.
type LogLine struct {
	Time time.Time
	Body string
}

// logLinesQuery reads from the configured logs table; %s is the table
// name, from the closed configuration, never from input. Ordering by a
// hash of the line before the LIMIT makes the lines kept, when there are
// more than limit, a uniform sample of the window, and the same one on
// every call; below the limit it keeps them all. A plain LIMIT would keep
// whichever lines the engine read first. The engine then sorts them by
// time, faster than Go would.
const logLinesQuery = `
SELECT Timestamp, Body FROM (
    SELECT Timestamp, Body FROM %s
    WHERE ServiceName = {service:String}
      AND TimestampTime >= {from:DateTime('UTC')} AND TimestampTime < {to:DateTime('UTC')}
      AND SeverityNumber >= {min_severity:UInt8}
    ORDER BY cityHash64(Timestamp, Body)
    LIMIT {limit:UInt32})
ORDER BY Timestamp, Body`

// LogLines returns the log lines of service in [from, to) at or above
// minSeverity (an OpenTelemetry severity number: 13 is WARN), oldest
// first. The window is in whole seconds (the table's TimestampTime): from
// and to are truncated to the second. When there are more than limit
// lines it returns a uniform sample of limit of them, so that the rates
// of kinds of lines stay what they were.
func (s *Store) LogLines(ctx context.Context, service string, from, to time.Time, minSeverity uint8, limit int) ([]LogLine, error) {
	var out []LogLine
	p := map[string]string{
		"service": ParamString(service), "from": from.UTC().Format("2006-01-02 15:04:05"), "to": to.UTC().Format("2006-01-02 15:04:05"),
		"min_severity": ParamInt(int64(minSeverity)), "limit": ParamInt(int64(limit)),
	}
	err := s.query(ctx, "log_lines", fmt.Sprintf(logLinesQuery, s.logs), p, func(r Rows) error {
		var l LogLine
		if err := r.Scan(&l.Time, &l.Body); err != nil {
			return err
		}
		l.Time = l.Time.UTC()
		out = append(out, l)
		return nil
	})
	return out, err
}

// NewError is an error fingerprint first seen in a service in a window,
// with one of its types and messages.
type NewError struct {
	Service, Fingerprint, Type, Message string
	FirstSeen                           time.Time
}

// newErrorsAllQuery reads only the rollup, by the rule of
// newFingerprintsQuery; first_seen, type and message come from the days in
// [from, to), events earlier than since being no concern of this question.
const newErrorsAllQuery = `
SELECT service, fingerprint,
       anyIf(type, first_seen >= {from:DateTime64(3, 'UTC')}),
       anyIf(message, first_seen >= {from:DateTime64(3, 'UTC')}),
       minIf(first_seen, first_seen >= {from:DateTime64(3, 'UTC')}) AS new_since
FROM error_fingerprints
WHERE day >= toDate({since:DateTime64(3, 'UTC')}) AND day <= toDate({to:DateTime64(3, 'UTC')})
GROUP BY service, fingerprint
HAVING countIf(first_seen < {from:DateTime64(3, 'UTC')} AND last_seen >= {since:DateTime64(3, 'UTC')}) = 0
   AND new_since >= {from:DateTime64(3, 'UTC')} AND new_since < {to:DateTime64(3, 'UTC')}
ORDER BY new_since, service, fingerprint
LIMIT 10000`

// newErrorsAllScanQuery answers NewErrorsAll from the events alone, for
// lookbacks the daily rollup cannot resolve. min(time) is the same with or
// without duplicates, so it reads without FINAL.
const newErrorsAllScanQuery = `
SELECT service, fingerprint, any(type), any(message), min(time) AS first_seen
FROM errors
WHERE time >= {since:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
GROUP BY service, fingerprint
HAVING first_seen >= {from:DateTime64(3, 'UTC')}
ORDER BY first_seen, service, fingerprint
LIMIT 10000`

// NewErrorsAll lists, across every service, the errors (one per service
// and fingerprint, with one of its types and messages) first seen in
// [from, to), where "first" looks back to since: the same new error
// appearing in services that share no change points at a common cause.
func (s *Store) NewErrorsAll(ctx context.Context, since, from, to time.Time) ([]NewError, error) {
	var out []NewError
	p := map[string]string{"since": ParamTime(since), "from": ParamTime(from), "to": ParamTime(to)}
	name, q := "new_errors_all", newErrorsAllQuery
	if sameDay(since, from) {
		name, q = "new_errors_all_scan", newErrorsAllScanQuery
	}
	err := s.query(ctx, name, q, p, func(r Rows) error {
		var n NewError
		if err := r.Scan(&n.Service, &n.Fingerprint, &n.Type, &n.Message, &n.FirstSeen); err != nil {
			return err
		}
		n.FirstSeen = n.FirstSeen.UTC()
		out = append(out, n)
		return nil
	})
	return out, err
}

// PeerBucket is one service's sampling-corrected count, in one minute, of
// the errors of its calls to one peer (another service or a third party).
type PeerBucket struct {
	Service, Peer string
	Minute        time.Time
	Estimate      float64
}

// peerErrorsQuery names the callee of each failed outbound call: the
// peer.service or server.address attribute an instrumented client records,
// else the host of the first URL (or Python's host='…') in the message.
const peerErrorsQuery = `
SELECT service,
       multiIf(attributes['peer.service'] != '', attributes['peer.service'],
               attributes['server.address'] != '', attributes['server.address'],
               extract(message, '(?:https?://|host=\\x27)([^/:"\\x27 ]+)')) AS peer,
       toStartOfMinute(time) AS minute, sum(1 / sample_rate) AS est
FROM errors FINAL
WHERE service IN {services:Array(String)}
  AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
GROUP BY service, peer, minute
HAVING peer != ''
ORDER BY service, peer, minute`

// PeerErrorsPerMinute counts the services' failed calls per callee and
// minute in [from, to): a surge of failed calls to a third party points at
// its outage rather than at a change of ours.
func (s *Store) PeerErrorsPerMinute(ctx context.Context, services []string, from, to time.Time) ([]PeerBucket, error) {
	var out []PeerBucket
	p := map[string]string{"services": ParamStrings(services), "from": ParamTime(from), "to": ParamTime(to)}
	err := s.query(ctx, "peer_errors_per_minute", peerErrorsQuery, p, func(r Rows) error {
		var b PeerBucket
		if err := r.Scan(&b.Service, &b.Peer, &b.Minute, &b.Estimate); err != nil {
			return err
		}
		b.Minute = b.Minute.UTC()
		out = append(out, b)
		return nil
	})
	return out, err
}

// flagErrorsQuery counts a service's errors that evaluated a flag, and of
// those the ones that had it on; {attr} is "flag." and the flag's key.
const flagErrorsQuery = `
SELECT countIf(attributes[{attr:String}] = 'true'), countIf(attributes[{attr:String}] != '')
FROM errors FINAL
WHERE service = {service:String}
  AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}`

// FlagErrors counts the error events of service in [from, to) that carry
// the evaluated value of flag (an attribute "flag.<key>" = "true" or
// "false", as flag SDK integrations record it on errors), and how many of
// them had it on. Errors down a bad flag's path all have it on, however
// small its rollout.
func (s *Store) FlagErrors(ctx context.Context, service, flag string, from, to time.Time) (on, evaluated uint64, err error) {
	p := map[string]string{"attr": ParamString("flag." + flag), "service": ParamString(service), "from": ParamTime(from), "to": ParamTime(to)}
	err = s.query(ctx, "flag_errors", flagErrorsQuery, p, func(r Rows) error { return r.Scan(&on, &evaluated) })
	return on, evaluated, err
}

const changeByIDQuery = `
SELECT ` + changeReadColumns + `
FROM changes FINAL
WHERE id = {id:String}
ORDER BY time
LIMIT 1`

// ChangeByID reads one change back by id (the change collectors merge a
// late source of a deploy into what earlier sources wrote); found is false
// when there is none. The id is not a key prefix, but the changes table is
// small.
func (s *Store) ChangeByID(ctx context.Context, id string) (c event.Change, found bool, err error) {
	err = s.query(ctx, "change_by_id", changeByIDQuery, map[string]string{"id": ParamString(id)}, func(r Rows) error {
		c, err = scanChange(r)
		found = err == nil
		return err
	})
	return c, found, err
}
