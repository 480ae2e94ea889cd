package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// FailureScope selects the failures an impact question counts: those of
// Services in [From, To). LatencyMS, when positive, also counts a request
// log slower than it (attribute duration_ms, or http.server.request.duration
// in seconds) as failed.
type FailureScope struct {
	Services  []string
	From, To  time.Time
	LatencyMS float64
}

func (f FailureScope) params() map[string]string {
	return map[string]string{
		"services": ParamStrings(f.Services),
		"from":     ParamTime(f.From), "to": ParamTime(f.To),
		// The logs table's second-resolution key column; the exact bounds
		// are checked on Timestamp as well.
		"from_s":     f.From.UTC().Truncate(time.Second).Format(time.DateTime),
		"to_s":       f.To.UTC().Add(time.Second - 1).Truncate(time.Second).Format(time.DateTime),
		"latency_ms": ParamFloat(f.LatencyMS),
	}
}

// failuresCTE defines "failures": one row per failure of the scope, which
// every impact query reads.
//
// A failure is an error event above warning level, or a log line that is
// an error (severity ERROR or above), a failed request (HTTP status 5xx),
// or, when a latency threshold is set, a request slower than it. The same
// failure seen by several sources (the SDK's error event, the service's
// error line, the access log's 500) shares a trace id, so rows are
// collapsed on it (or on the record's own identity when it has none):
// counting distinct failures instead of rows also makes re-sent records
// harmless, so no FINAL is needed. A failure's keep probability is the
// highest of its observations' (an unsampled access log saw it for sure);
// its user, customer, route and label come from whichever observation has
// them, preferring the error event's label ("Type: message").
//
// %[1]s is the logs table, from the closed configuration, never input.
const failuresCTE = `
failures AS (
    SELECT fkey,
           argMax(svc_, prio) AS service,
           max(t_) AS time,
           min(t_) AS first_time,
           max(rate_) AS rate,
           maxIf(rate_, prio = 2) AS rate_errors,
           maxIf(rate_, prio = 1) AS rate_logs,
           anyIf(user_, user_ != '') AS user,
           anyIf(customer_, customer_ != '') AS customer,
           anyIf(route_, route_ != '') AS route,
           argMax(what_, prio) AS what
    FROM (
        SELECT if(trace_id != '', trace_id, id) AS fkey,
               service AS svc_, time AS t_,
               if(sample_rate > 0 AND sample_rate <= 1, sample_rate, 1) AS rate_,
               user_id AS user_, customer_id AS customer_,
               attributes['http.route'] AS route_,
               substring(if(type != '', concat(type, ': ', message), message), 1, 160) AS what_,
               2 AS prio
        FROM errors
        WHERE service IN {services:Array(String)}
          AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
          AND level NOT IN ('warning', 'info', 'debug')
        UNION ALL
        SELECT if(TraceId != '', TraceId, toString(cityHash64(ServiceName, Timestamp, Body))) AS fkey,
               toString(ServiceName) AS svc_,
               toDateTime64(Timestamp, 3, 'UTC') AS t_,
               if(log_rate > 0 AND log_rate <= 1, log_rate, 1) AS rate_,
               LogAttributes['user.id'] AS user_, LogAttributes['customer.id'] AS customer_,
               LogAttributes['http.route'] AS route_,
               multiIf(status >= 500, concat('HTTP ', toString(status), if(route_ != '', concat(' ', route_), '')),
                       SeverityNumber >= 17, substring(Body, 1, 160),
                       concat('slow request', if(route_ != '', concat(' ', route_), ''))) AS what_,
               1 AS prio
        FROM (
            SELECT *,
                   toUInt16OrZero(if(LogAttributes['http.response.status_code'] != '',
                                     LogAttributes['http.response.status_code'],
                                     LogAttributes['http.status_code'])) AS status,
                   if(LogAttributes['duration_ms'] != '',
                      toFloat64OrZero(LogAttributes['duration_ms']),
                      toFloat64OrZero(LogAttributes['http.server.request.duration']) * 1000) AS duration_ms,
                   toFloat64OrDefault(LogAttributes['sample_rate'], 1.0) AS log_rate
            FROM %[1]s
            WHERE ServiceName IN {services:Array(String)}
              AND TimestampTime >= {from_s:DateTime} AND TimestampTime <= {to_s:DateTime}
        )
        WHERE t_ >= {from:DateTime64(3, 'UTC')} AND t_ < {to:DateTime64(3, 'UTC')}
          AND (SeverityNumber >= 17 OR status >= 500
               OR ({latency_ms:Float64} > 0 AND duration_ms > {latency_ms:Float64}))
    )
    GROUP BY fkey
)`

// FreqRow is one cell of a frequency table: Entities (users or customers)
// of Service ("" for the whole scope) were seen failing exactly Seen times
// (MaxSeen or more in its last bin) among failures kept with probability
// Rate. Each entity counts once, under the highest rate it was seen at.
type FreqRow struct {
	Service  string
	Rate     float64
	Seen     int
	Entities uint64
}

// MaxSeen is the last bin of a frequency table.
const MaxSeen = 64

// frequencyQuery tabulates entities by how often they were seen failing,
// for the scope as a whole and per service (the grouping set without the
// service leaves it ”). An entity's count is of its failures at the
// highest rate it was seen at: the entities filed under a rate are those
// with no failure kept more surely, which is what the estimator assumes.
// %[2]s is the entity column, user or customer, chosen by the code.
const frequencyQuery = `
WITH ` + failuresCTE + `
SELECT service, rate, least(x, {max_seen:UInt32}) AS seen, count() AS entities
FROM (
    SELECT service, who, max(r) AS rate, argMax(n, r) AS x
    FROM (
        SELECT service, %[2]s AS who, round(rate, 6) AS r, count() AS n
        FROM failures
        WHERE who != ''
        GROUP BY GROUPING SETS ((who, r), (service, who, r))
    )
    GROUP BY service, who
)
GROUP BY service, rate, seen
ORDER BY service, rate, seen`

// Entity names what an impact count counts.
type Entity string

// The countable entities.
const (
	Users     Entity = "user"
	Customers Entity = "customer"
)

// FailureFrequencies returns the frequency tables of who (users or
// customers) failing in the scope: the rows with Service "" are the whole
// scope, the others one service each.
func (s *Store) FailureFrequencies(ctx context.Context, scope FailureScope, who Entity) ([]FreqRow, error) {
	if who != Users && who != Customers {
		return nil, fmt.Errorf("failure frequencies: unknown entity %q", who)
	}
	p := scope.params()
	p["max_seen"] = ParamInt(MaxSeen)
	var out []FreqRow
	err := s.query(ctx, "failure_frequencies_"+string(who), fmt.Sprintf(frequencyQuery, s.logs, who), p, func(r Rows) error {
		var f FreqRow
		var seen uint64
		if err := r.Scan(&f.Service, &f.Rate, &seen, &f.Entities); err != nil {
			return err
		}
		f.Seen = int(seen)
		out = append(out, f)
		return nil
	})
	return out, err
}

// activeQuery tabulates the users active in the scope, by how many log
// lines and error events they left at the highest rate they were seen
// at: request logs are often sampled, and the same estimator corrects them.
const activeQuery = `
SELECT rate, least(x, {max_seen:UInt32}) AS seen, count() AS users
FROM (
    SELECT who, max(r) AS rate, argMax(n, r) AS x
    FROM (
        SELECT LogAttributes['user.id'] AS who,
               round(if(lr > 0 AND lr <= 1, lr, 1), 6) AS r, count() AS n
        FROM (
            SELECT LogAttributes, toFloat64OrDefault(LogAttributes['sample_rate'], 1.0) AS lr
            FROM %[1]s
            WHERE ServiceName IN {services:Array(String)}
              AND TimestampTime >= {from_s:DateTime} AND TimestampTime <= {to_s:DateTime}
              AND Timestamp >= {from:DateTime64(3, 'UTC')} AND Timestamp < {to:DateTime64(3, 'UTC')}
        )
        WHERE who != ''
        GROUP BY who, r
        UNION ALL
        SELECT user_id AS who, round(if(sample_rate > 0 AND sample_rate <= 1, sample_rate, 1), 6) AS r, count() AS n
        FROM errors
        WHERE service IN {services:Array(String)}
          AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
          AND user_id != ''
        GROUP BY who, r
    )
    GROUP BY who
)
GROUP BY rate, seen
ORDER BY rate, seen`

// ActiveUserFrequencies returns the frequency table of the users active in
// the scope (Service is always "").
func (s *Store) ActiveUserFrequencies(ctx context.Context, scope FailureScope) ([]FreqRow, error) {
	p := scope.params()
	p["max_seen"] = ParamInt(MaxSeen)
	var out []FreqRow
	err := s.query(ctx, "active_user_frequencies", fmt.Sprintf(activeQuery, s.logs), p, func(r Rows) error {
		var f FreqRow
		var seen uint64
		if err := r.Scan(&f.Rate, &seen, &f.Entities); err != nil {
			return err
		}
		f.Seen = int(seen)
		out = append(out, f)
		return nil
	})
	return out, err
}

// Overlap counts, among the sampled failures filed under one rate, those
// the error events kept, those the logs kept, and those both kept, at
// that rate. When both sources sample the same failures independently, a
// failure is seen with probability 1 − (1 − pₑ)(1 − pₗ), more than either
// rate: Both/Logs estimates how surely the error events keep a failure
// (their rate times the share of failures they report at all), and
// Both/Errors the logs'.
type Overlap struct {
	Rate               float64
	Errors, Logs, Both uint64
}

const overlapQuery = `
WITH ` + failuresCTE + `
SELECT r, countIf(round(rate_errors, 6) = r), countIf(round(rate_logs, 6) = r),
       countIf(round(rate_errors, 6) = r AND round(rate_logs, 6) = r)
FROM (SELECT *, round(rate, 6) AS r FROM failures WHERE rate < 1)
GROUP BY r
ORDER BY r`

// FailureOverlap returns, per sampling rate below 1, how the scope's
// failures were seen by error events and logs.
func (s *Store) FailureOverlap(ctx context.Context, scope FailureScope) ([]Overlap, error) {
	var out []Overlap
	err := s.query(ctx, "failure_overlap", fmt.Sprintf(overlapQuery, s.logs), scope.params(), func(r Rows) error {
		var o Overlap
		if err := r.Scan(&o.Rate, &o.Errors, &o.Logs, &o.Both); err != nil {
			return err
		}
		out = append(out, o)
		return nil
	})
	return out, err
}

// CustomerFailures is what one customer went through in the scope.
type CustomerFailures struct {
	Customer string
	// Users is the number of distinct users seen failing (exact among what
	// was kept).
	Users uint64
	// Failures is sampling-corrected: each failure counts 1/rate.
	Failures                  float64
	FirstFailure, LastFailure time.Time
	TopError                  string
	Services                  []string
}

// customersQuery aggregates per customer and failure label first, so that
// the label with the most failures can be picked, then merges the users'
// exact distinct-count states (uniqExactState/Merge) across labels: the
// users are counted inside ClickHouse, never listed.
const customersQuery = `
WITH ` + failuresCTE + `
SELECT customer, uniqExactMerge(us) AS users, sum(est) AS failures,
       min(first) AS first_failure, max(last) AS last_failure,
       argMax(what, est) AS top_error, arraySort(groupUniqArrayArray(svcs)) AS services
FROM (
    SELECT customer, what, uniqExactStateIf(user, user != '') AS us, sum(1 / rate) AS est,
           min(first_time) AS first, max(time) AS last, groupUniqArray(service) AS svcs
    FROM failures
    WHERE customer != ''
    GROUP BY customer, what
)
GROUP BY customer
ORDER BY users DESC, failures DESC, customer`

// FailuresByCustomer lists every customer with failures in the scope, the
// most affected first.
func (s *Store) FailuresByCustomer(ctx context.Context, scope FailureScope) ([]CustomerFailures, error) {
	var out []CustomerFailures
	err := s.query(ctx, "failures_by_customer", fmt.Sprintf(customersQuery, s.logs), scope.params(), func(r Rows) error {
		var c CustomerFailures
		if err := r.Scan(&c.Customer, &c.Users, &c.Failures, &c.FirstFailure, &c.LastFailure, &c.TopError, &c.Services); err != nil {
			return err
		}
		c.FirstFailure, c.LastFailure = c.FirstFailure.UTC(), c.LastFailure.UTC()
		out = append(out, c)
		return nil
	})
	return out, err
}

// RouteFailures is what one route (endpoint) of one service went through.
type RouteFailures struct {
	Service, Route string
	Users          uint64
	// Failures and AnonymousFailures (those without a user id) are
	// sampling-corrected.
	Failures, AnonymousFailures float64
	TopError                    string
}

const routesQuery = `
WITH ` + failuresCTE + `
SELECT service, route, uniqExactMerge(us) AS users, sum(est) AS failures, sum(anon) AS anonymous,
       argMax(what, est) AS top_error
FROM (
    SELECT service, route, what, uniqExactStateIf(user, user != '') AS us,
           sum(1 / rate) AS est, sumIf(1 / rate, user = '') AS anon
    FROM failures
    GROUP BY service, route, what
)
GROUP BY service, route
ORDER BY service, users DESC, failures DESC, route`

// FailuresByRoute breaks the scope's failures down per service and route.
func (s *Store) FailuresByRoute(ctx context.Context, scope FailureScope) ([]RouteFailures, error) {
	var out []RouteFailures
	err := s.query(ctx, "failures_by_route", fmt.Sprintf(routesQuery, s.logs), scope.params(), func(r Rows) error {
		var f RouteFailures
		if err := r.Scan(&f.Service, &f.Route, &f.Users, &f.Failures, &f.AnonymousFailures, &f.TopError); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// ImpactQueries are the named queries an impact answer runs, with their
// SQL, for a reviewer to re-run: parameters as in FailureScope.
func (s *Store) ImpactQueries() map[string]string {
	trim := func(q string) string { return strings.TrimSpace(q) }
	return map[string]string{
		"failure_frequencies_user":     trim(fmt.Sprintf(frequencyQuery, s.logs, Users)),
		"failure_frequencies_customer": trim(fmt.Sprintf(frequencyQuery, s.logs, Customers)),
		"active_user_frequencies":      trim(fmt.Sprintf(activeQuery, s.logs)),
		"failure_overlap":              trim(fmt.Sprintf(overlapQuery, s.logs)),
		"failures_by_customer":         trim(fmt.Sprintf(customersQuery, s.logs)),
		"failures_by_route":            trim(fmt.Sprintf(routesQuery, s.logs)),
	}
}
