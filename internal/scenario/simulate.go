package scenario

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// Log volumes, per request or per failed request.
const (
	infoLogPerRequest = 1.0 / 300  // sampled request summaries
	slowLogPerRequest = 1.0 / 4000 // WARN slow request lines
	errorLogChance    = 0.25       // a failed request logs an ERROR line
	retryLogChance    = 0.25       // a failed upstream call logs a WARN retry line
	anonymousShare    = 0.15       // requests without a signed-in user
)

// diurnal is the traffic of an hour relative to a weekday afternoon peak:
// lowest around 03:00 UTC, highest around 15:00, with a lunchtime shoulder,
// and a third lower at weekends.
func diurnal(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	theta := 2 * math.Pi * (h - 15) / 24
	f := 0.56 + 0.4*math.Cos(theta) + 0.05*math.Cos(2*theta+1)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		f *= 0.65
	}
	return max(f, 0.08)
}

// simulator turns the planned world into records, minute by minute.
type simulator struct {
	g      *generator
	r      *rand.Rand
	users  *rand.Zipf
	batch  *event.Batch
	labels []map[string]string // per service; shared by its points, read-only
	rel    []int               // per service, index into releases at the current minute
	pods   map[string][]string // service and version -> pod names
}

// simulate generates the metrics, error events and logs. Changes and
// services are added by the caller.
func (g *generator) simulate(r *rand.Rand) *event.Batch {
	errs, logs := g.expectedVolumes()
	sim := &simulator{
		g:     g,
		r:     r,
		users: rand.NewZipf(r, 1.1, 8, numUsers-1),
		batch: &event.Batch{
			Metrics: make([]event.MetricPoint, 0, 3*g.minutes*len(g.svcs)),
			Errors:  make([]event.ErrorEvent, 0, errs),
			Logs:    make([]event.LogRecord, 0, logs),
		},
		labels: make([]map[string]string, len(g.svcs)),
		rel:    make([]int, len(g.svcs)),
		pods:   make(map[string][]string),
	}
	for i := range g.svcs {
		sim.labels[i] = map[string]string{"environment": Environment}
	}
	// AR(1) noise on the log of each service's traffic: slow wander of about
	// 8% around the daily curve, on top of Poisson noise per minute.
	noise := make([]float64, len(g.svcs))
	changeLogs := sim.changeLogs()
	byTime := func(a, b time.Time) int { return a.Compare(b) }
	for m := range g.minutes {
		t := g.start.Add(time.Duration(m) * time.Minute)
		next := t.Add(time.Minute)
		load := diurnal(t)
		lvl := g.inc.level(t)
		// Records of a minute are drawn in any order within it and sorted
		// when it ends, which keeps each kind in time order overall.
		b := sim.batch
		errMark, logMark := len(b.Errors), len(b.Logs)
		for len(changeLogs) > 0 && changeLogs[0].Time.Before(next) {
			b.Logs = append(b.Logs, changeLogs[0])
			changeLogs = changeLogs[1:]
		}
		for i, s := range g.svcs {
			noise[i] = 0.97*noise[i] + 0.0195*r.NormFloat64()
			for sim.rel[i]+1 < len(s.releases) && !s.releases[sim.rel[i]+1].from.After(t) {
				sim.rel[i]++
			}
			req := poisson(r, s.peak*load*s.dayFactor[m/(24*60)]*math.Exp(noise[i]))
			failed := sim.errors(s, t, req, lvl)
			sim.infoLogs(s, t, req, load, lvl)
			b.Metrics = append(b.Metrics,
				event.MetricPoint{Time: t, Service: s.name, Name: MetricRequests, Value: float64(req), Labels: sim.labels[i]},
				event.MetricPoint{Time: t, Service: s.name, Name: MetricErrors, Value: float64(failed), Labels: sim.labels[i]})
			if req > 0 {
				sigma := 0.05 + 0.4/math.Sqrt(float64(req)+1)
				p95 := s.p95*(0.85+0.3*load)*math.Exp(sigma*r.NormFloat64()) + s.incidentMs*lvl
				b.Metrics = append(b.Metrics, event.MetricPoint{Time: t, Service: s.name, Name: MetricLatencyP95, Value: math.Round(p95*10) / 10, Labels: sim.labels[i]})
			}
		}
		slices.SortFunc(b.Errors[errMark:], func(x, y event.ErrorEvent) int { return byTime(x.Time, y.Time) })
		slices.SortFunc(b.Logs[logMark:], func(x, y event.LogRecord) int { return byTime(x.Time, y.Time) })
	}
	return sim.batch
}

// expectedVolumes estimates how many error events and logs simulate will
// emit, a little high, so that their slices are allocated once: growing
// slices of large records was a fifth of the generation time.
func (g *generator) expectedVolumes() (errs, logs int) {
	load := 0.0
	for m := 0; m < g.minutes; m += 10 {
		load += 10 * diurnal(g.start.Add(time.Duration(m)*time.Minute))
	}
	after := load * max(g.end.Sub(g.inc.onset).Hours(), 0) / g.end.Sub(g.start).Hours()
	var req, failed float64
	for _, s := range g.svcs {
		req += s.peak * load
		failed += s.peak * (load*s.baseRatio + after*g.inc.ratio*s.incidentCoef)
	}
	errs = int(1.1*failed*g.opt.ErrorSampleRate) + 1024
	logs = int(1.1*(req*(infoLogPerRequest+slowLogPerRequest)+failed*(errorLogChance+retryLogChance))) + 1024
	return errs, logs
}

// errors draws the failed requests of s in the minute at t, at most req,
// emits their events and logs, and returns how many failed.
func (sim *simulator) errors(s *service, t time.Time, req int, lvl float64) int {
	g, r := sim.g, sim.r
	left := req
	draw := func(lambda float64) int {
		n := min(poisson(r, lambda), left)
		left -= n
		return n
	}
	for k := range s.chronic {
		fp := &s.chronic[k]
		f := 1.0
		for _, b := range s.blips {
			if b.fp == k && !t.Before(b.start) && t.Before(b.end) {
				f = b.factor
			}
		}
		for range draw(float64(req) * s.ownRatio * fp.weight * f) {
			sim.failure(s, fp, t.Add(between(r, 0, time.Minute)), "")
		}
	}
	for _, e := range s.deps {
		d := g.svcs[e.to]
		ratio := d.baseRatio + g.inc.ratio*lvl*d.incidentCoef
		for range draw(float64(req) * e.share * e.prop * ratio) {
			sim.failure(s, &e.fp, t.Add(between(r, 0, time.Minute)), d.name)
		}
	}
	if s.idx == g.inc.causeSvc && lvl > 0 {
		from := t
		if g.inc.onset.After(t) {
			from = g.inc.onset
		}
		for range draw(float64(req) * g.inc.ratio * lvl) {
			sim.failure(s, &g.inc.fp, from.Add(between(r, 0, t.Add(time.Minute).Sub(from))), "")
		}
	}
	return req - left
}

// failure records one failed request of s at ts: an error event when
// sampled, and sometimes log lines. dep names the dependency whose failed
// call failed the request, or is "".
func (sim *simulator) failure(s *service, fp *fingerprint, ts time.Time, dep string) {
	g, r := sim.g, sim.r
	rate := g.opt.ErrorSampleRate
	sampled := rate >= 1 || r.Float64() < rate
	logErr := r.Float64() < errorLogChance
	logRetry := dep != "" && r.Float64() < retryLogChance
	if !sampled && !logErr && !logRetry {
		return
	}
	user, customer := sim.user()
	trace := hexID(r, 32)
	ver, pod := sim.release(s, ts)
	msg := fp.msg
	if strings.Contains(msg, "%d") {
		msg = fmt.Sprintf(msg, r.IntN(256))
	}
	status := strconv.Itoa(fp.tmpl.status)
	if sampled {
		sim.batch.Errors = append(sim.batch.Errors, event.ErrorEvent{
			ID:          hexID(r, 32),
			Time:        ts,
			Service:     s.name,
			Environment: Environment,
			Release:     ver,
			Fingerprint: fp.id,
			Type:        fp.tmpl.typ,
			Message:     msg,
			UserID:      user,
			CustomerID:  customer,
			TraceID:     trace,
			Level:       fp.tmpl.level,
			SampleRate:  rate,
			Attributes: map[string]string{
				"http.method":      fp.method,
				"http.route":       fp.route,
				"http.status_code": status,
				"server_name":      pod,
			},
		})
	}
	if logRetry {
		retry := ts.Add(-between(r, 50*time.Millisecond, 2*time.Second))
		if minute := ts.Truncate(time.Minute); retry.Before(minute) {
			retry = minute
		}
		sim.log(s, retry, "WARN",
			"call to "+dep+" failed, retrying (attempt 2/3)", user, customer, trace, pod,
			"peer.service", dep, "http.route", fp.route)
	}
	if logErr {
		sim.log(s, ts, "ERROR", fp.tmpl.typ+": "+msg, user, customer, trace, pod,
			"http.method", fp.method, "http.route", fp.route, "http.status_code", status)
	}
}

// infoLogs emits the sampled request summaries and slow-request warnings of
// s in the minute at t.
func (sim *simulator) infoLogs(s *service, t time.Time, req int, load, lvl float64) {
	r := sim.r
	p95 := s.p95*(0.85+0.3*load) + s.incidentMs*lvl
	for range poisson(r, float64(req)*infoLogPerRequest) {
		ts := t.Add(between(r, 0, time.Minute))
		user, customer := sim.user()
		_, pod := sim.release(s, ts)
		method, route, _ := strings.Cut(pick(r, s.spec.routes), " ")
		status := "200"
		if method == "POST" {
			status = "201"
		}
		d := p95 / 2.3 * math.Exp(0.45*r.NormFloat64())
		sim.log(s, ts, "INFO", requestBody[s.spec.lang], user, customer, hexID(r, 32), pod,
			"http.method", method, "http.route", route, "http.status_code", status, "duration_ms", strconv.Itoa(int(d)+1))
	}
	for range poisson(r, float64(req)*slowLogPerRequest) {
		ts := t.Add(between(r, 0, time.Minute))
		user, customer := sim.user()
		_, pod := sim.release(s, ts)
		method, route, _ := strings.Cut(pick(r, s.spec.routes), " ")
		sim.log(s, ts, "WARN", "slow request", user, customer, hexID(r, 32), pod,
			"http.method", method, "http.route", route, "duration_ms", strconv.Itoa(int(p95*uniform(r, 1.2, 3))))
	}
}

// requestBody is the message of a request summary per language's usual
// logging library.
var requestBody = map[lang]string{
	langGo:     "request completed",
	langJava:   "Completed request",
	langPython: "request finished",
	langNode:   "request completed",
}

// changeLogs returns, in time order, what services log when they change:
// each replica of a deploy or rollback starting, a flag update, a config
// reload.
func (sim *simulator) changeLogs() []event.LogRecord {
	g, r := sim.g, sim.r
	var logs []event.LogRecord
	add := func(l event.LogRecord, ok bool) {
		if ok {
			logs = append(logs, l)
		}
	}
	for _, c := range g.changes {
		s := g.svcs[c.svc]
		switch c.Kind {
		case event.ChangeDeploy, event.ChangeRollback:
			for _, pod := range sim.podsOf(s, c.Version) {
				ts := c.Time.Add(between(r, 20*time.Second, 3*time.Minute))
				add(sim.newLog(s, ts, "INFO", "starting "+s.name, "", "", "", pod, "service.version", c.Version))
			}
		case event.ChangeFlag:
			ts := c.Time.Add(between(r, time.Second, 30*time.Second))
			add(sim.newLog(s, ts, "INFO", "feature flag updated", "", "", "", "", "flag", c.Attributes["flag"], "value", c.Attributes["to"]))
		case event.ChangeConfig:
			ts := c.Time.Add(between(r, 30*time.Second, 2*time.Minute))
			add(sim.newLog(s, ts, "INFO", "configuration reloaded", "", "", "", "", "key", c.Attributes["key"]))
		}
	}
	slices.SortFunc(logs, func(x, y event.LogRecord) int { return x.Time.Compare(y.Time) })
	return logs
}

// log appends a log line; kv are attribute key-value pairs.
func (sim *simulator) log(s *service, ts time.Time, severity, body, user, customer, trace, pod string, kv ...string) {
	if l, ok := sim.newLog(s, ts, severity, body, user, customer, trace, pod, kv...); ok {
		sim.batch.Logs = append(sim.batch.Logs, l)
	}
}

// newLog returns a log line, or false if ts is outside the data (a replica
// starting after the end).
func (sim *simulator) newLog(s *service, ts time.Time, severity, body, user, customer, trace, pod string, kv ...string) (event.LogRecord, bool) {
	if ts.Before(sim.g.start) || !ts.Before(sim.g.end) {
		return event.LogRecord{}, false
	}
	attrs := make(map[string]string, len(kv)/2+1)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs[kv[i]] = kv[i+1]
	}
	if pod != "" {
		attrs["k8s.pod.name"] = pod
	}
	span := ""
	if trace != "" {
		span = hexID(sim.r, 16)
	}
	return event.LogRecord{
		Time:       ts,
		Service:    s.name,
		Severity:   severity,
		Body:       body,
		UserID:     user,
		CustomerID: customer,
		TraceID:    trace,
		SpanID:     span,
		Attributes: attrs,
	}, true
}

// user draws the user of a request, most active users most often, and their
// customer; both are "" for an anonymous request.
func (sim *simulator) user() (user, customer string) {
	if sim.r.Float64() < anonymousShare {
		return "", ""
	}
	u := sim.users.Uint64()
	return sim.g.users[u], sim.g.customers[sim.g.userCustomer[u]]
}

// release returns the version s runs at ts, which lies in the current
// minute, and the pod that served a request then.
func (sim *simulator) release(s *service, ts time.Time) (version, pod string) {
	j := sim.rel[s.idx]
	for j+1 < len(s.releases) && !s.releases[j+1].from.After(ts) {
		j++
	}
	v := s.releases[j].version
	return v, pick(sim.r, sim.podsOf(s, v))
}

// podsOf returns the Kubernetes pod names of s at version v; the
// replica-set hash follows from the version as it would from the pod spec.
func (sim *simulator) podsOf(s *service, v string) []string {
	key := s.name + "@" + v
	if p, ok := sim.pods[key]; ok {
		return p
	}
	rs := contentHash(10, s.name, v)
	p := make([]string, s.replicas)
	for i := range p {
		p[i] = s.name + "-" + rs + "-" + contentHash(5, s.name, v, strconv.Itoa(i))
	}
	sim.pods[key] = p
	return p
}
