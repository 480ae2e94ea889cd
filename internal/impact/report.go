package impact

import "time"

// Query asks who was hurt in [From, To) in Services. Onset, when the
// symptoms began, is reported with the window (zero, or outside it, means
// From); the window itself should begin at the onset, since the baselines
// are placed against From.
type Query struct {
	Services []string  `json:"services"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Onset    time.Time `json:"onset,omitzero"`
	// Incident is the incident the window came from, if any.
	Incident string `json:"incident,omitempty"`
}

// Window is the question's window, echoed in the report.
type Window struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Onset    time.Time `json:"onset"`
	Services []string  `json:"services"`
	Incident string    `json:"incident,omitempty"`
	// Baselines are the windows the baseline was measured in.
	Baselines []Span `json:"baselines"`
}

// Span is a time range.
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Affected is an affected-entity count: Count (what was seen, corrected
// for sampling, with its interval), Baseline (how many fail in a
// comparable window anyway) and Excess (those the incident added, with an
// interval).
type Affected struct {
	Count
	Baseline   float64 `json:"baseline"`
	Excess     float64 `json:"excess"`
	ExcessLow  float64 `json:"excess_low"`
	ExcessHigh float64 `json:"excess_high"`
}

// Report is the impact of one window.
type Report struct {
	Window Window `json:"window"`
	// Level is the coverage of every interval in the report (0.9).
	Level             float64  `json:"level"`
	AffectedUsers     Affected `json:"affected_users"`
	AffectedCustomers Affected `json:"affected_customers"`
	// ActiveUsers is the sampling-corrected number of distinct users in
	// the scope's logs and errors in the window; Share is the excess
	// affected users over it.
	ActiveUsers Count   `json:"active_users"`
	Share       float64 `json:"share"`
	// Severity is the suggested severity from Share, the excess users and
	// the window's duration, by the configured thresholds.
	Severity string `json:"severity"`
	// Failures is the sampling-corrected number of failures (distinct
	// failed requests or error events) in the window.
	Failures float64 `json:"failures"`
	// AnonymousFailures are failures without a user id: they count in
	// Failures but cannot count as users.
	AnonymousFailures float64 `json:"anonymous_failures"`
	// Customers lists every affected customer, most affected first.
	Customers []Customer `json:"customers"`
	// ByService breaks the affected users down per service and route.
	ByService []ServiceImpact `json:"by_service"`
}

// Customer is one affected customer (tenant, organisation).
type Customer struct {
	Customer string `json:"customer"`
	// Users were seen failing; UsersEstimate corrects that for sampling
	// at the scope's overall ratio.
	Users         uint64    `json:"users"`
	UsersEstimate float64   `json:"users_estimate"`
	Failures      float64   `json:"failures"`
	FirstFailure  time.Time `json:"first_failure"`
	LastFailure   time.Time `json:"last_failure"`
	TopError      string    `json:"top_error"`
	Services      []string  `json:"services"`
}

// ServiceImpact is one service's share of the impact.
type ServiceImpact struct {
	Service  string        `json:"service"`
	Users    Count         `json:"users"`
	Failures float64       `json:"failures"`
	Routes   []RouteImpact `json:"routes"`
}

// RouteImpact is one route's (endpoint's) share of a service's impact;
// Route is "" for failures that name none.
type RouteImpact struct {
	Route         string  `json:"route"`
	Users         uint64  `json:"users"`
	UsersEstimate float64 `json:"users_estimate"`
	Failures      float64 `json:"failures"`
	TopError      string  `json:"top_error"`
}
