package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Window is a time range [From, To).
type Window struct{ From, To time.Time }

// FailureScope selects the failures an impact question counts: those of
// Services in each of Windows. Windows[0] is the question's window; the
// others are its baselines, counted by the same queries in the same scan
// (a query per window would read the same parts again and again).
// LatencyMS, when positive, also counts a request log slower than it
// (attribute duration_ms, or http.server.request.duration in seconds) as
// failed.
type FailureScope struct {
	Services  []string
	Windows   []Window
	LatencyMS float64
}

// MaxWindows bounds a scope's windows (the question and its baselines).
const MaxWindows = 16

func (f FailureScope) params() map[string]string {
	p := map[string]string{
		"services":   ParamStrings(f.Services),
		"latency_ms": ParamFloat(f.LatencyMS),
		"max_seen":   ParamInt(MaxSeen),
	}
	for i, w := range f.Windows {
		p[fmt.Sprintf("from_%d", i)] = ParamTime(w.From)
		p[fmt.Sprintf("to_%d", i)] = ParamTime(w.To)
		// The logs table's second-resolution key column; the exact bounds
		// are checked on Timestamp as well.
		p[fmt.Sprintf("from_s_%d", i)] = w.From.UTC().Truncate(time.Second).Format(time.DateTime)
		p[fmt.Sprintf("to_s_%d", i)] = w.To.UTC().Add(time.Second - 1).Truncate(time.Second).Format(time.DateTime)
	}
	return p
}

func (f FailureScope) check() error {
	if len(f.Windows) == 0 || len(f.Windows) > MaxWindows {
		return fmt.Errorf("impact scope: %d windows, want 1 to %d", len(f.Windows), MaxWindows)
	}
	return nil
}

// only keeps the scope's first window.
func (f FailureScope) only() FailureScope {
	f.Windows = f.Windows[:1]
	return f
}

// windowSQL renders, for n windows, the condition that column col lies in
// one of them (an OR of ranges, which the primary key index narrows to
// exactly those ranges) and the expression numbering the window it lies
// in. param is the parameter name prefix and typ their type.
func windowSQL(n int, col, param, typ string, inclusive bool) (cond, which string) {
	lt := "<"
	if inclusive {
		lt = "<="
	}
	var ors, cases []string
	for i := range n {
		r := fmt.Sprintf("(%[1]s >= {%[2]s_%[4]d:%[3]s} AND %[1]s %[5]s {%[6]s_%[4]d:%[3]s})",
			col, "from"+param, typ, i, lt, "to"+param)
		ors = append(ors, r)
		cases = append(cases, r, fmt.Sprint(i))
	}
	return "(" + strings.Join(ors, " OR ") + ")", "toInt32(multiIf(" + strings.Join(cases, ", ") + ", -1))"
}

// failuresCTE defines "failures": one row per failure of the scope, with
// the window it fell in (win), which every impact query reads.
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
// logs is the logs table, from the closed configuration, never input.
func failuresCTE(logs string, windows int) string {
	errIn, errWin := windowSQL(windows, "time", "", "DateTime64(3, 'UTC')", false)
	logKey, _ := windowSQL(windows, "TimestampTime", "_s", "DateTime('UTC')", true)
	logIn, logWin := windowSQL(windows, "t_", "", "DateTime64(3, 'UTC')", false)
	return `
failures AS (
    SELECT fkey, win,
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
               ` + errWin + ` AS win,
               service AS svc_, time AS t_,
               if(sample_rate > 0 AND sample_rate <= 1, greatest(sample_rate, 0.000001), 1) AS rate_,
               user_id AS user_, customer_id AS customer_,
               attributes['http.route'] AS route_,
               substring(if(type != '', concat(type, ': ', message), message), 1, 160) AS what_,
               2 AS prio
        FROM errors
        WHERE service IN {services:Array(String)} AND ` + errIn + `
          AND level NOT IN ('warning', 'info', 'debug')
        UNION ALL
        SELECT if(TraceId != '', TraceId, toString(cityHash64(ServiceName, Timestamp, Body))) AS fkey,
               ` + logWin + ` AS win,
               toString(ServiceName) AS svc_,
               toDateTime64(Timestamp, 3, 'UTC') AS t_,
               if(log_rate > 0 AND log_rate <= 1, greatest(log_rate, 0.000001), 1) AS rate_,
               LogAttributes['user.id'] AS user_, LogAttributes['customer.id'] AS customer_,
               LogAttributes['http.route'] AS route_,
               multiIf(status >= 500, concat('HTTP ', toString(status), if(route_ != '', concat(' ', route_), '')),
                       SeverityNumber >= 17, substring(Body, 1, 160),
                       concat('slow request', if(route_ != '', concat(' ', route_), ''))) AS what_,
               1 AS prio
        FROM (
            SELECT Timestamp, TraceId, ServiceName, Body, SeverityNumber, LogAttributes,
                   toUInt16OrZero(if(LogAttributes['http.response.status_code'] != '',
                                     LogAttributes['http.response.status_code'],
                                     LogAttributes['http.status_code'])) AS status,
                   if(LogAttributes['duration_ms'] != '',
                      toFloat64OrZero(LogAttributes['duration_ms']),
                      toFloat64OrZero(LogAttributes['http.server.request.duration']) * 1000) AS duration_ms,
                   toFloat64OrDefault(LogAttributes['sample_rate'], 1.0) AS log_rate
            FROM ` + logs + `
            WHERE ServiceName IN {services:Array(String)} AND ` + logKey + `
        )
        WHERE ` + logIn + `
          AND (SeverityNumber >= 17 OR status >= 500
               OR ({latency_ms:Float64} > 0 AND duration_ms > {latency_ms:Float64}))
    )
    GROUP BY fkey, win
)`
}

// FreqRow is one cell of a frequency table: Entities (users or customers,
// as Entity says) of Service ("" for the whole scope) were seen failing
// exactly Seen times (MaxSeen or more in its last bin) in window Window
// among failures kept with probability Rate. Each entity counts once per
// window, under the highest rate it was seen at.
type FreqRow struct {
	Window   int
	Entity   Entity
	Service  string
	Rate     float64
	Seen     int
	Entities uint64
	// Of the failures these entities were counted by, Errors were kept
	// as error events, Logs as log lines and Both as both (at Rate). When
	// both sources sample the same failures independently, a failure is
	// seen with probability 1 − (1 − pₑ)(1 − pₗ), more than either rate:
	// Both/Logs estimates how surely the error events keep a failure (their
	// rate times the share of failures they report at all), Both/Errors
	// the logs'. Active-user rows leave them 0.
	Errors, Logs, Both uint64
}

// MaxSeen is the last bin of a frequency table.
const MaxSeen = 64

// frequencyQuery tabulates users and customers by how often they were seen
// failing, and how the two sources saw those failures, per window, for the scope as a whole and per service (the
// grouping set without the service leaves it empty). An entity's count is of
// its failures at the highest rate it was seen at: the entities filed
// under a rate are those with no failure kept more surely, which is what
// the estimator assumes.
const frequencyQuery = `
WITH %s
SELECT win, kind, service, rate, least(x, {max_seen:UInt32}) AS seen, count() AS entities,
       sum(xe), sum(xl), sum(xb)
FROM (
    SELECT win, kind, service, who, max(r) AS rate, argMax(n, r) AS x,
           argMax(ne, r) AS xe, argMax(nl, r) AS xl, argMax(nb, r) AS xb
    FROM (
        SELECT win, kind, service, who, round(rate, 6) AS r, count() AS n,
               countIf(round(rate_errors, 6) = r) AS ne, countIf(round(rate_logs, 6) = r) AS nl,
               countIf(round(rate_errors, 6) = r AND round(rate_logs, 6) = r) AS nb
        FROM failures
        ARRAY JOIN ['user', 'customer'] AS kind, [user, customer] AS who
        WHERE who != ''
        GROUP BY GROUPING SETS ((win, kind, who, r), (win, kind, service, who, r))
    )
    GROUP BY win, kind, service, who
)
GROUP BY win, kind, service, rate, seen
ORDER BY win, kind, service, rate, seen`

// Entity names what an impact count counts.
type Entity string

// The countable entities.
const (
	Users     Entity = "user"
	Customers Entity = "customer"
)

// FailureFrequencies returns the frequency tables of users and customers
// failing in each window of the scope: the rows with Service "" are the
// whole scope, the others one service each.
func (s *Store) FailureFrequencies(ctx context.Context, scope FailureScope) ([]FreqRow, error) {
	if err := scope.check(); err != nil {
		return nil, err
	}
	q := fmt.Sprintf(frequencyQuery, failuresCTE(s.logs, len(scope.Windows)))
	var out []FreqRow
	err := s.query(ctx, "failure_frequencies", q, scope.params(), func(r Rows) error {
		var f FreqRow
		var win int32
		var kind string
		var seen uint64
		if err := r.Scan(&win, &kind, &f.Service, &f.Rate, &seen, &f.Entities, &f.Errors, &f.Logs, &f.Both); err != nil {
			return err
		}
		f.Window, f.Entity, f.Seen = int(win), Entity(kind), int(seen)
		out = append(out, f)
		return nil
	})
	return out, err
}

// activeQuery tabulates the users active in each window, by how many log
// lines and error events they left at the highest rate they were seen
// at: request logs are often sampled, and the same estimator corrects them.
const activeQuery = `
SELECT win, rate, least(x, {max_seen:UInt32}) AS seen, count() AS users
FROM (
    SELECT win, who, max(r) AS rate, argMax(n, r) AS x
    FROM (
      -- A user's log lines and events at the same rate add up.
      SELECT win, who, r, sum(n) AS n FROM (
        SELECT %[3]s AS win, LogAttributes['user.id'] AS who,
               round(if(lr > 0 AND lr <= 1, greatest(lr, 0.000001), 1), 6) AS r, count() AS n
        FROM (
            SELECT Timestamp, LogAttributes, toFloat64OrDefault(LogAttributes['sample_rate'], 1.0) AS lr
            FROM %[1]s
            WHERE ServiceName IN {services:Array(String)} AND %[2]s
        )
        WHERE who != '' AND win >= 0
        GROUP BY win, who, r
        UNION ALL
        SELECT %[5]s AS win, user_id AS who, round(if(sample_rate > 0 AND sample_rate <= 1, greatest(sample_rate, 0.000001), 1), 6) AS r, count() AS n
        FROM errors
        WHERE service IN {services:Array(String)} AND %[4]s AND user_id != ''
        GROUP BY win, who, r
      )
      GROUP BY win, who, r
    )
    GROUP BY win, who
)
GROUP BY win, rate, seen
ORDER BY win, rate, seen`

// ActiveUserFrequencies returns the frequency table of the users active in
// each window of the scope (Entity is Users, Service is "").
func (s *Store) ActiveUserFrequencies(ctx context.Context, scope FailureScope) ([]FreqRow, error) {
	if err := scope.check(); err != nil {
		return nil, err
	}
	n := len(scope.Windows)
	logKey, _ := windowSQL(n, "TimestampTime", "_s", "DateTime('UTC')", true)
	_, logWin := windowSQL(n, "Timestamp", "", "DateTime64(3, 'UTC')", false)
	errIn, errWin := windowSQL(n, "time", "", "DateTime64(3, 'UTC')", false)
	q := fmt.Sprintf(activeQuery, s.logs, logKey, logWin, errIn, errWin)
	var out []FreqRow
	err := s.query(ctx, "active_user_frequencies", q, scope.params(), func(r Rows) error {
		f := FreqRow{Entity: Users}
		var win int32
		var seen uint64
		if err := r.Scan(&win, &f.Rate, &seen, &f.Entities); err != nil {
			return err
		}
		f.Window, f.Seen = int(win), int(seen)
		out = append(out, f)
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
WITH %s
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

// FailuresByCustomer lists every customer with failures in the scope's
// first window, the most affected first.
func (s *Store) FailuresByCustomer(ctx context.Context, scope FailureScope) ([]CustomerFailures, error) {
	if err := scope.check(); err != nil {
		return nil, err
	}
	var out []CustomerFailures
	q := fmt.Sprintf(customersQuery, failuresCTE(s.logs, 1))
	err := s.query(ctx, "failures_by_customer", q, scope.only().params(), func(r Rows) error {
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
WITH %s
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

// FailuresByRoute breaks the failures of the scope's first window down
// per service and route.
func (s *Store) FailuresByRoute(ctx context.Context, scope FailureScope) ([]RouteFailures, error) {
	if err := scope.check(); err != nil {
		return nil, err
	}
	var out []RouteFailures
	q := fmt.Sprintf(routesQuery, failuresCTE(s.logs, 1))
	err := s.query(ctx, "failures_by_route", q, scope.only().params(), func(r Rows) error {
		var f RouteFailures
		if err := r.Scan(&f.Service, &f.Route, &f.Users, &f.Failures, &f.AnonymousFailures, &f.TopError); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	return out, err
}
