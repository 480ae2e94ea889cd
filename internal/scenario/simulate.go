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

// infoLogRate is infoLogPerRequest as the request summaries record it, so
// that impact estimates can correct for it.
var infoLogRate = strconv.FormatFloat(infoLogPerRequest, 'g', 6, 64)

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
	spo    []int               // per service, index of its next sporadic error
	pods   map[string][]string // service, version and region -> pod names
	factor []float64           // scratch: the current burst factor of each chronic error
	flags  [][]flagTimeline    // per service, the rollout of each flag the changes step
	// broken names the flag whose "on" path fails the failures being
	// recorded (a bad flag's incident), or is "".
	broken string
}

// flagTimeline is the rollout share of one flag over time: share[i] from
// at[i] on, share[0] before at[0] too (the state the data starts in).
type flagTimeline struct {
	name  string
	at    []time.Time
	share []float64
}

func (ft *flagTimeline) shareAt(t time.Time) float64 {
	v := ft.share[0]
	for i, a := range ft.at {
		if a.After(t) {
			break
		}
		v = ft.share[i+1]
	}
	return v
}

// flagShare reads a rollout step: "off", "on", or a percentage.
func flagShare(s string) float64 {
	switch s {
	case "off", "":
		return 0
	case "on":
		return 1
	}
	var p float64
	if _, err := fmt.Sscanf(s, "%g%%", &p); err != nil {
		return 0
	}
	return p / 100
}

// flagTimelines follows every flag the changes step, per service.
func (g *generator) flagTimelines() [][]flagTimeline {
	out := make([][]flagTimeline, len(g.svcs))
	for _, c := range g.changes {
		if c.Kind != event.ChangeFlag || c.Attributes["flag"] == "" {
			continue
		}
		tl := out[c.svc]
		i := slices.IndexFunc(tl, func(ft flagTimeline) bool { return ft.name == c.Attributes["flag"] })
		if i < 0 {
			tl = append(tl, flagTimeline{name: c.Attributes["flag"], share: []float64{flagShare(c.Attributes["old"])}})
			i = len(tl) - 1
		}
		tl[i].at = append(tl[i].at, c.Time)
		tl[i].share = append(tl[i].share, flagShare(c.Attributes["new"]))
		out[c.svc] = tl
	}
	return out
}

// simulate generates the metrics, error events and logs. Changes and
// services are added by the caller.
func (g *generator) simulate(r *rand.Rand) *event.Batch {
	errs, logs, points := g.expectedVolumes()
	sim := &simulator{
		g:     g,
		r:     r,
		users: rand.NewZipf(r, 1.1, 8, numUsers-1),
		batch: &event.Batch{
			Metrics: make([]event.MetricPoint, 0, points),
			Errors:  make([]event.ErrorEvent, 0, errs),
			Logs:    make([]event.LogRecord, 0, logs),
		},
		labels: make([]map[string]string, len(g.svcs)),
		rel:    make([]int, len(g.svcs)),
		spo:    make([]int, len(g.svcs)),
		pods:   make(map[string][]string),
		flags:  g.flagTimelines(),
	}
	for i := range g.svcs {
		sim.labels[i] = map[string]string{"environment": Environment}
	}
	in := &g.inc
	// AR(1) noise on the log of each service's traffic: slow wander of about
	// 8% around the daily curve, on top of Poisson noise per minute. Memory
	// wanders less.
	noise := make([]float64, len(g.svcs))
	memNoise := make([]float64, len(g.svcs))
	changeLogs := sim.changeLogs()
	kills := in.kills
	byTime := func(a, b time.Time) int { return a.Compare(b) }
	for m := range g.minutes {
		t := g.start.Add(time.Duration(m) * time.Minute)
		next := t.Add(time.Minute)
		load := diurnal(t)
		lv := levels{err: level(in.errLvl, m), lat: level(in.latLvl, m), spike: level(in.spikeLvl, m)}
		// Records of a minute are drawn in any order within it and sorted
		// when it ends, which keeps each kind in time order overall.
		b := sim.batch
		errMark, logMark := len(b.Errors), len(b.Logs)
		for len(changeLogs) > 0 && changeLogs[0].Time.Before(next) {
			b.Logs = append(b.Logs, changeLogs[0])
			changeLogs = changeLogs[1:]
		}
		for len(kills) > 0 && kills[0].at.Before(next) {
			sim.killLog(kills[0])
			kills = kills[1:]
		}
		for i, s := range g.svcs {
			noise[i] = 0.97*noise[i] + 0.0195*r.NormFloat64()
			memNoise[i] = 0.95*memNoise[i] + 0.006*r.NormFloat64()
			for sim.rel[i]+1 < len(s.releases) && !s.releases[sim.rel[i]+1].from.After(t) {
				sim.rel[i]++
			}
			sim.burstFactors(s, t)
			rpm := s.peak*load*s.dayFactor[m/(24*60)]*math.Exp(noise[i]) + s.spikeRPM*lv.spike
			mem := s.memPod * float64(s.replicas) * (0.85 + 0.2*load) * math.Exp(memNoise[i])
			if in.leak != nil && s.idx == in.causeSvc {
				mem += in.leak[m]
			}
			if s.split == nil {
				req := Poisson(r, rpm)
				failed := sim.errors(s, t, req, lv, -1)
				p95 := sim.p95(s, req, load, lv, s.incidentMs)
				sim.infoLogs(s, t, req, load, p95, -1)
				sim.points(s, t, sim.labels[i], req, failed, p95)
				b.Metrics = append(b.Metrics, event.MetricPoint{Time: t, Service: s.name, Name: MetricMemory, Value: math.Round(mem), Labels: sim.labels[i]})
				continue
			}
			rel := s.releases[sim.rel[i]]
			for k, sh := range s.split.shards {
				req := Poisson(r, rpm*sh.weight)
				failed := sim.errors(s, t, req, lv, k)
				ms := s.depMs
				if sim.faulty(s, k) {
					ms += s.ownMs
				}
				p95 := sim.p95(s, req, load, lv, ms)
				sim.infoLogs(s, t, req, load, p95, k)
				sim.points(s, t, sim.shardLabels(s, k, rel.versionOn(sh)), req, failed, p95)
			}
			// Memory stays one series: it is read per service, not compared
			// across versions.
			b.Metrics = append(b.Metrics, event.MetricPoint{Time: t, Service: s.name, Name: MetricMemory, Value: math.Round(mem), Labels: sim.labels[i]})
		}
		slices.SortFunc(b.Errors[errMark:], func(x, y event.ErrorEvent) int { return byTime(x.Time, y.Time) })
		slices.SortFunc(b.Logs[logMark:], func(x, y event.LogRecord) int { return byTime(x.Time, y.Time) })
	}
	return sim.batch
}

// levels are the incident's levels in the current minute.
type levels struct{ err, lat, spike float64 }

// versionOn returns the version the release runs on sh.
func (rl release) versionOn(sh shard) string {
	if sh.canary && rl.canary != "" {
		return rl.canary
	}
	return rl.version
}

// points appends the request, error and latency points of one series in
// the minute at t.
func (sim *simulator) points(s *service, t time.Time, labels map[string]string, req, failed int, p95 float64) {
	b := sim.batch
	b.Metrics = append(b.Metrics,
		event.MetricPoint{Time: t, Service: s.name, Name: MetricRequests, Value: float64(req), Labels: labels},
		event.MetricPoint{Time: t, Service: s.name, Name: MetricErrors, Value: float64(failed), Labels: labels})
	if req > 0 {
		b.Metrics = append(b.Metrics, event.MetricPoint{Time: t, Service: s.name, Name: MetricLatencyP95, Value: math.Round(p95*10) / 10, Labels: labels})
	}
}

// p95 draws the p95 latency of req requests of s under load, with incMs
// added at the incident's full effect.
func (sim *simulator) p95(s *service, req int, load float64, lv levels, incMs float64) float64 {
	if req == 0 {
		return 0
	}
	sigma := 0.05 + 0.4/math.Sqrt(float64(req)+1)
	return s.p95*(0.85+0.3*load)*math.Exp(sigma*sim.r.NormFloat64()) + incMs*lv.lat + s.spikeMs*lv.spike
}

// faulty reports whether shard k of s runs the incident's faulty code.
func (sim *simulator) faulty(s *service, k int) bool {
	return s.idx == sim.g.inc.causeSvc && s.split.shards[k].canary && s.releases[sim.rel[s.idx]].canary != ""
}

// shardLabels returns the labels of shard k of s running version v.
func (sim *simulator) shardLabels(s *service, k int, v string) map[string]string {
	sp := s.split
	if sp.byRegion {
		v = "" // regions keep their series across versions
	}
	key := strconv.Itoa(k) + "@" + v
	if l, ok := sp.labels[key]; ok {
		return l
	}
	l := map[string]string{"environment": Environment}
	if sp.byRegion {
		l["region"] = sp.shards[k].region
	} else {
		l["instance"] = instanceName(s, v, k)
		l["version"] = v
	}
	sp.labels[key] = l
	return l
}

// instanceName is the pod of instance slot k of s at version v:
// "<service>-<version>-<pod id>".
func instanceName(s *service, v string, k int) string {
	return s.name + "-" + v + "-" + contentHash(5, s.name, v, strconv.Itoa(k))
}

// burstFactors sets sim.factor to the burst factor of each chronic error
// of s at t.
func (sim *simulator) burstFactors(s *service, t time.Time) {
	sim.factor = sim.factor[:0]
	for range s.chronic {
		sim.factor = append(sim.factor, 1)
	}
	for _, b := range s.blips {
		if !t.Before(b.start) && t.Before(b.end) {
			sim.factor[b.fp] = b.factor
		}
	}
}

// expectedVolumes estimates how many error events, logs and metric points
// simulate will emit, a little high, so that their slices are allocated
// once: growing slices of large records was a fifth of the generation time.
func (g *generator) expectedVolumes() (errs, logs, points int) {
	in := &g.inc
	var load, incident float64
	for m := 0; m < g.minutes; m += 10 {
		d := diurnal(g.start.Add(time.Duration(m) * time.Minute))
		load += 10 * d
		incident += 10 * d * level(in.errLvl, m)
	}
	var req, failed float64
	for _, s := range g.svcs {
		req += s.peak * load
		failed += s.peak * (load*s.baseRatio + incident*in.ratio*s.incidentCoef)
		points += 4 * g.minutes
		if s.split != nil {
			points += 3 * g.minutes * (len(s.split.shards) + s.canaryPods() - 1)
		}
	}
	errs = int(1.1*failed*g.opt.ErrorSampleRate) + 1024
	logs = int(1.1*(req*(infoLogPerRequest+slowLogPerRequest)+failed*(errorLogChance+retryLogChance))) + 1024
	return errs, logs, points
}

// errors draws the failed requests of s in the minute at t, at most req,
// emits their events and logs, and returns how many failed. k is the shard
// the requests went to, or -1 for an unsplit service.
func (sim *simulator) errors(s *service, t time.Time, req int, lv levels, k int) int {
	g, r, in := sim.g, sim.r, &sim.g.inc
	left := req
	draw := func(lambda float64) int {
		n := min(Poisson(r, lambda), left)
		left -= n
		return n
	}
	at := func() time.Time { return t.Add(between(r, 0, time.Minute)) }
	load := 1 + s.spikeBump*lv.spike
	for j := range s.chronic {
		fp := &s.chronic[j]
		for range draw(float64(req) * s.ownRatio * load * fp.weight * sim.factor[j]) {
			sim.failure(s, fp, at(), "", k)
		}
	}
	for _, e := range s.deps {
		d := g.svcs[e.to]
		calls := float64(req) * e.share * e.prop
		for range draw(calls * d.baseRatio * (1 + d.spikeBump*lv.spike)) {
			sim.failure(s, &e.fp, at(), d.name, k)
		}
		if lv.err > 0 && d.incidentCoef > 0 {
			sim.incidentFailures(s, &e.fp, t, draw(calls*in.ratio*lv.err*d.incidentCoef), d.name, k)
		}
	}
	for _, x := range s.exts {
		calls := float64(req) * x.share * x.prop
		for range draw(calls * x.base) {
			sim.failure(s, &x.timeout, at(), x.ext.name, k)
		}
		if x.failing != nil && lv.err > 0 {
			sim.incidentFailures(s, x.failing, t, draw(calls*in.ratio*lv.err), x.ext.name, k)
		}
	}
	if s.idx == in.causeSvc && lv.err > 0 && in.ratio > 0 {
		coef := s.ownCoef
		if k >= 0 {
			coef = 0
			if sim.faulty(s, k) {
				coef = 1
			}
		}
		sim.incidentFailures(s, &in.fp, t, draw(float64(req)*in.ratio*lv.err*coef), "", k)
	}
	if k <= 0 && req > 0 {
		next := t.Add(time.Minute)
		for ; sim.spo[s.idx] < len(s.sporadic) && s.sporadic[sim.spo[s.idx]].at.Before(next); sim.spo[s.idx]++ {
			sp := &s.sporadic[sim.spo[s.idx]]
			if sp.at.Before(t) {
				continue
			}
			for range min(sp.n, left) {
				left--
				sim.failure(s, &sp.fp, at(), "", k)
			}
		}
	}
	return req - left
}

// incidentFailures records n failed requests of the incident in the minute
// at t, none before the onset nor after the end: events and logs, unless
// the incident is silent.
func (sim *simulator) incidentFailures(s *service, fp *fingerprint, t time.Time, n int, dep string, k int) {
	in := &sim.g.inc
	if n == 0 || in.silent {
		return
	}
	from, to := t, t.Add(time.Minute)
	if in.onset.After(from) && in.onset.Before(to) {
		from = in.onset
	}
	if !in.until.IsZero() && in.until.Before(to) {
		to = in.until
	}
	if !to.After(from) {
		return
	}
	if s.idx == in.causeSvc && in.cause != nil && in.cause.Kind == event.ChangeFlag && fp == &in.fp {
		// The bad flag's own failures are requests down its broken path.
		sim.broken = in.cause.Attributes["flag"]
		defer func() { sim.broken = "" }()
	}
	for range n {
		sim.failure(s, fp, from.Add(between(sim.r, 0, to.Sub(from))), dep, k)
	}
}

// killLog logs an OOM kill of a replica of the incident's cause service, as
// the kubelet reports it.
func (sim *simulator) killLog(k kill) {
	s := sim.g.svcs[sim.g.inc.causeSvc]
	v, _, _ := sim.instance(s, k.at, 0)
	pods := sim.podsOf(s, v, "")
	pod := pods[k.pod%len(pods)]
	sim.log(s, k.at, "WARN", "container restarted", "", "", "", pod,
		"reason", "OOMKilled", "exit_code", "137", "restart_count", strconv.Itoa(k.restarts))
}

// failure records one failed request of s at ts, served by shard k (-1: any
// replica): an error event when sampled, and sometimes log lines. dep names
// the dependency whose failed call failed the request, or is "".
func (sim *simulator) failure(s *service, fp *fingerprint, ts time.Time, dep string, k int) {
	g, r := sim.g, sim.r
	rate := g.opt.ErrorSampleRate
	sampled := rate >= 1 || r.Float64() < rate
	logErr := r.Float64() < errorLogChance
	logRetry := dep != "" && r.Float64() < retryLogChance
	if !sampled && !logErr && !logRetry {
		return
	}
	user, customer := sim.user()
	trace := HexID(r, 32)
	ver, pod, region := sim.instance(s, ts, k)
	msg := fp.msg
	if strings.Contains(msg, "%d") {
		msg = fmt.Sprintf(msg, r.IntN(256))
	}
	status := strconv.Itoa(fp.tmpl.status)
	if sampled {
		attrs := map[string]string{
			"http.method":      fp.method,
			"http.route":       fp.route,
			"http.status_code": status,
			"server_name":      pod,
		}
		if region != "" {
			attrs["region"] = region
		}
		// The flags the request evaluated, as a flag SDK's integration
		// records them on the error (Sentry's "flags" context): on for
		// the rollout's share of requests, and always on for a request
		// down a bad flag's broken path.
		for i := range sim.flags[s.idx] {
			ft := &sim.flags[s.idx][i]
			on := ft.name == sim.broken || r.Float64() < ft.shareAt(ts)
			attrs["flag."+ft.name] = strconv.FormatBool(on)
		}
		if dep != "" {
			// An instrumented HTTP client records the callee of a failed
			// call (OpenTelemetry's peer.service).
			attrs["peer.service"] = dep
		}
		sim.batch.Errors = append(sim.batch.Errors, event.ErrorEvent{
			ID:          HexID(r, 32),
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
			Attributes:  attrs,
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
// req requests of s, on shard k (-1: any replica), in the minute at t; p95 is
// their latency. Slow requests grow with the square of the latency over its
// usual, which is how a slowdown shows in logs. A silent incident adds no
// log: the summaries keep the usual latency.
func (sim *simulator) infoLogs(s *service, t time.Time, req int, load, p95 float64, k int) {
	r := sim.r
	usual := s.p95 * (0.85 + 0.3*load)
	if sim.g.inc.silent || p95 <= 0 {
		p95 = usual
	}
	slow := min((p95/usual)*(p95/usual), 25)
	for range Poisson(r, float64(req)*infoLogPerRequest) {
		ts := t.Add(between(r, 0, time.Minute))
		user, customer := sim.user()
		_, pod, _ := sim.instance(s, ts, k)
		method, route, _ := strings.Cut(pick(r, s.spec.routes), " ")
		status := "200"
		if method == "POST" {
			status = "201"
		}
		d := p95 / 2.3 * math.Exp(0.45*r.NormFloat64())
		sim.log(s, ts, "INFO", requestBody[s.spec.lang], user, customer, HexID(r, 32), pod,
			"http.method", method, "http.route", route, "http.status_code", status, "duration_ms", strconv.Itoa(int(d)+1),
			"sample_rate", infoLogRate)
	}
	for range Poisson(r, float64(req)*slowLogPerRequest*slow) {
		ts := t.Add(between(r, 0, time.Minute))
		user, customer := sim.user()
		_, pod, _ := sim.instance(s, ts, k)
		method, route, _ := strings.Cut(pick(r, s.spec.routes), " ")
		sim.log(s, ts, "WARN", "slow request", user, customer, HexID(r, 32), pod,
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
// each replica of a deploy or rollback starting (only the canaries of a
// partial one), a flag update, a config reload.
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
			var pods []string
			switch {
			case s.split == nil:
				pods = sim.podsOf(s, c.Version, "")
			case s.split.byRegion:
				for _, sh := range s.split.shards {
					if sh.canary || !c.partial {
						pods = append(pods, sim.podsOf(s, c.Version, sh.region)...)
					}
				}
			default:
				for k, sh := range s.split.shards {
					if sh.canary || !c.partial {
						pods = append(pods, instanceName(s, c.Version, k))
					}
				}
			}
			for _, pod := range pods {
				ts := c.Time.Add(between(r, 20*time.Second, 3*time.Minute))
				add(sim.newLog(s, ts, "INFO", "starting "+s.name, "", "", "", pod, "service.version", c.Version))
			}
		case event.ChangeFlag:
			ts := c.Time.Add(between(r, time.Second, 30*time.Second))
			add(sim.newLog(s, ts, "INFO", "feature flag updated", "", "", "", "", "flag", c.Attributes["flag"], "value", c.Attributes["new"]))
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
		span = HexID(sim.r, 16)
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

// instance returns the version s runs at ts, which lies in the current
// minute, on shard k (-1: a replica drawn by traffic), the pod that served
// a request there, and its region for a service split by region.
func (sim *simulator) instance(s *service, ts time.Time, k int) (version, pod, region string) {
	j := sim.rel[s.idx]
	for j+1 < len(s.releases) && !s.releases[j+1].from.After(ts) {
		j++
	}
	rel := s.releases[j]
	if s.split == nil {
		return rel.version, pick(sim.r, sim.podsOf(s, rel.version, "")), ""
	}
	if k < 0 {
		x := sim.r.Float64()
		for k = 0; k < len(s.split.shards)-1; k++ {
			if x -= s.split.shards[k].weight; x < 0 {
				break
			}
		}
	}
	sh := s.split.shards[k]
	v := rel.versionOn(sh)
	if s.split.byRegion {
		return v, pick(sim.r, sim.podsOf(s, v, sh.region)), sh.region
	}
	return v, instanceName(s, v, k), ""
}

// podsOf returns the Kubernetes pod names of s at version v, in region if
// not ""; the replica-set hash follows from the version as it would from
// the pod spec.
func (sim *simulator) podsOf(s *service, v, region string) []string {
	key := s.name + "@" + v + "@" + region
	if p, ok := sim.pods[key]; ok {
		return p
	}
	rs := contentHash(10, s.name, v, region)
	p := make([]string, s.replicas)
	for i := range p {
		p[i] = s.name + "-" + rs + "-" + contentHash(5, s.name, v, region, strconv.Itoa(i))
	}
	sim.pods[key] = p
	return p
}
