package scenario

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// generator holds the state of one Generate call. Its phases run in order:
// buildTopology, planIncident, scheduleChanges, finalizeChanges, simulate.
type generator struct {
	opt        Options
	start, end time.Time
	minutes    int
	svcs       []*service
	byName     map[string]int
	order      []int // indices of svcs, every service after all its dependencies
	inc        incident
	changes    []*plannedChange

	users        []string // user ids, most active first
	customers    []string // customer (tenant) ids
	userCustomer []int    // userCustomer[u] is the index of user u's customer
}

// Sizes of the user base.
const (
	numUsers     = 4000
	numCustomers = 300
)

// service is one service of the scenario and everything that drives its
// traffic.
type service struct {
	idx       int
	spec      *serviceSpec
	name      string
	peak      float64 // requests per minute at peak, TrafficScale applied
	ownRatio  float64 // chronic error ratio of its own code
	baseRatio float64 // ownRatio plus the chronic failures of dependencies that surface here
	p95       float64 // ms
	memPod    float64 // working set of one replica in bytes
	replicas  int
	deps      []*edge
	exts      []*extEdge
	callers   []int
	chronic   []fingerprint // weights sum to 1
	dayFactor []float64     // per day of data, around 1
	blips     []blip
	sporadic  []sporadic
	initial   version
	releases  []release // version timeline, set by finalizeChanges
	split     *split    // nil unless its metrics are per instance or region

	// ownCoef is the part of the incident's error ratio (incident.ratio)
	// that fails s's own requests with incident.fp: the share of its
	// traffic the faulty code serves, 0 unless s is the cause. ownMs is the
	// p95 it adds there at full effect; for a split service it applies to
	// the faulty shards only, and depMs to every shard.
	ownCoef, ownMs float64
	// incidentCoef is the part of the incident's error ratio that surfaces
	// here, its own and through the services and third parties it calls;
	// incidentMs is the p95 latency it adds here at full effect.
	incidentCoef float64
	incidentMs   float64
	depMs        float64
	// spikeRPM is the extra traffic of a traffic spike at full effect, and
	// spikeMs the p95 it adds; spikeBump raises the chronic error ratio by
	// that fraction, as load does.
	spikeRPM, spikeMs, spikeBump float64
}

// edge is a call dependency from one service to another.
type edge struct {
	to    int
	share float64     // fraction of the caller's requests that call the dependency
	prop  float64     // fraction of failed calls that fail the caller's request (the rest are retried or degraded)
	fp    fingerprint // how the caller reports such a failure
}

// extEdge is a call from a service to a third party.
type extEdge struct {
	ext     externalSpec
	share   float64      // fraction of the caller's requests that call it
	prop    float64      // fraction of failed calls that fail the caller's request
	base    float64      // chronic failure ratio of the calls: timeouts now and then
	timeout fingerprint  // how the caller reports a timed-out call
	outage  fingerprint  // how it reports a 503, which a healthy third party does not answer
	failing *fingerprint // the outage's failures, when the incident is its outage
}

// fingerprint is one group of errors of a service.
type fingerprint struct {
	id     string
	tmpl   errTemplate
	msg    string // message template, may hold one %d
	method string
	route  string
	weight float64 // share of the service's own chronic errors
}

// blip is a short burst of one chronic error, background noise unrelated to
// any change.
type blip struct {
	fp         int // index into chronic
	start, end time.Time
	factor     float64
}

// sporadic is a one-off handful of errors of a fingerprint not otherwise
// seen: background noise that looks new.
type sporadic struct {
	fp fingerprint
	at time.Time
	n  int
}

// split is how a service's metrics are split into series: per instance, each
// labelled with its pod and version, or per region. Its shards keep their
// traffic shares for the whole scenario.
type split struct {
	byRegion bool
	shards   []shard
	labels   map[string]map[string]string // shard and version -> labels, shared by points
}

// shard is one instance slot or region of a split service.
type shard struct {
	region string  // "" for an instance slot
	weight float64 // share of the service's requests
	canary bool    // runs the canary version of a partial release
}

func newGenerator(opt Options) *generator {
	return &generator{
		opt:     opt,
		start:   opt.Start,
		end:     opt.Start.Add(time.Duration(opt.Days) * 24 * time.Hour),
		minutes: opt.Days * 24 * 60,
		byName:  make(map[string]int),
	}
}

// buildTopology chooses the services, wires the call graph and sets each
// service's traffic, errors and latency.
func (g *generator) buildTopology(r *rand.Rand) {
	for _, i := range choosePool(r, g.opt.Services) {
		spec := &servicePool[i]
		s := &service{
			idx:      len(g.svcs),
			spec:     spec,
			name:     spec.name,
			peak:     spec.peakRPM * uniform(r, 0.8, 1.25) * g.opt.TrafficScale,
			ownRatio: logUniform(r, minBaseRatio, 0.0035),
			p95:      spec.p95 * uniform(r, 0.85, 1.2),
			memPod:   spec.memMiB * uniform(r, 0.8, 1.25) * (1 << 20),
			replicas: 2 + r.IntN(5),
			initial:  version{1 + r.IntN(3), 10 + r.IntN(70), r.IntN(4)},
		}
		g.byName[s.name] = s.idx
		g.svcs = append(g.svcs, s)
	}
	for _, s := range g.svcs {
		for _, d := range s.spec.deps {
			if j, ok := g.byName[d]; ok {
				g.addEdge(r, s, j)
			}
		}
	}
	// Rewire orphans to the gateway, which fronts every public API.
	gw := g.byName["api-gateway"]
	for _, s := range g.svcs {
		if len(s.callers) == 0 && s.name != "frontend" && s.name != "api-gateway" {
			g.addEdge(r, g.svcs[gw], s.idx)
		}
	}
	for _, s := range g.svcs {
		for _, x := range s.spec.ext {
			g.addExternal(r, s, x)
		}
	}
	g.order = g.topoOrder()
	g.computeBaselines()

	chronic := 2
	if g.noisy() {
		chronic = 5 // and many sporadic fingerprints, below
	}
	for _, s := range g.svcs {
		g.chooseChronic(r, s, chronic)
		s.dayFactor = make([]float64, g.opt.Days)
		for d := range s.dayFactor {
			s.dayFactor[d] = uniform(r, 0.9, 1.1)
		}
		if g.noisy() {
			g.addSporadic(r, s, Poisson(r, 8*float64(g.opt.Days)), g.start, g.end)
		}
		// About one burst of a chronic error every other day.
		for range Poisson(r, 0.5*float64(g.opt.Days)) {
			at := g.start.Add(between(r, 0, g.end.Sub(g.start)))
			s.blips = append(s.blips, blip{
				fp:     r.IntN(len(s.chronic)),
				start:  at,
				end:    at.Add(between(r, 3*time.Minute, 20*time.Minute)),
				factor: uniform(r, 3, 10),
			})
		}
	}

	g.users = make([]string, numUsers)
	for i := range g.users {
		g.users[i] = "usr_" + HexID(r, 12)
	}
	g.customers = make([]string, numCustomers)
	for i := range g.customers {
		g.customers[i] = "cus_" + HexID(r, 10)
	}
	// Customers are skewed too: a few large tenants hold many users.
	cz := rand.NewZipf(r, 1.3, 4, numCustomers-1)
	g.userCustomer = make([]int, numUsers)
	for i := range g.userCustomer {
		g.userCustomer[i] = int(cz.Uint64())
	}
}

// choosePool returns the pool indices of n services: frontend and
// api-gateway, then others drawn by weight, in pool order.
func choosePool(r *rand.Rand, n int) []int {
	chosen := make([]bool, len(servicePool))
	chosen[0], chosen[1] = true, true
	for k := 2; k < n; k++ {
		total := 0.0
		for i, sp := range servicePool {
			if !chosen[i] {
				total += sp.weight
			}
		}
		x := r.Float64() * total
		for i, sp := range servicePool {
			if chosen[i] {
				continue
			}
			x -= sp.weight
			if x < 0 {
				chosen[i] = true
				break
			}
		}
	}
	var idx []int
	for i, c := range chosen {
		if c {
			idx = append(idx, i)
		}
	}
	return idx
}

// addEdge makes from call to. The share of from's requests that call it
// follows from their traffic: a small service cannot serve half of a big
// one's requests.
func (g *generator) addEdge(r *rand.Rand, from *service, to int) {
	dep := g.svcs[to]
	share := min(max(dep.peak/from.peak*uniform(r, 0.4, 1), 0.02), 0.95)
	tmpl := upstreamError[from.spec.lang]
	method, path, _ := strings.Cut(pick(r, dep.spec.routes), " ")
	msg := strings.NewReplacer("{dep}", dep.name, "{method}", method, "{path}", path).Replace(tmpl.msg)
	e := &edge{
		to:    to,
		share: share,
		prop:  uniform(r, 0.3, 0.7),
		fp:    g.newFingerprint(r, from, tmpl, msg),
	}
	from.deps = append(from.deps, e)
	dep.callers = append(dep.callers, from.idx)
}

// addExternal makes s call a third party.
func (g *generator) addExternal(r *rand.Rand, s *service, x extCall) {
	ext := externalPool[x.name]
	method, path, _ := strings.Cut(ext.route, " ")
	fill := strings.NewReplacer("{ext}", ext.name, "{host}", ext.host, "{method}", method, "{path}", path)
	to, un := extTimeout[s.spec.lang], extUnavailable[s.spec.lang]
	s.exts = append(s.exts, &extEdge{
		ext:     ext,
		share:   x.share * uniform(r, 0.8, 1.05),
		prop:    uniform(r, 0.5, 0.9),
		base:    logUniform(r, 0.0002, 0.001),
		timeout: g.newFingerprint(r, s, to, fill.Replace(to.msg)),
		outage:  g.newFingerprint(r, s, un, fill.Replace(un.msg)),
	})
}

// chooseChronic gives s n to n+2 chronic errors of its language, the first
// the most frequent.
func (g *generator) chooseChronic(r *rand.Rand, s *service, n int) {
	pool := chronicErrors[s.spec.lang]
	n = min(n+r.IntN(3), len(pool))
	total := 0.0
	for _, i := range r.Perm(len(pool))[:n] {
		fp := g.newFingerprint(r, s, pool[i], pool[i].msg)
		fp.weight = 1 / float64(len(s.chronic)+1)
		total += fp.weight
		s.chronic = append(s.chronic, fp)
	}
	for i := range s.chronic {
		s.chronic[i].weight /= total
	}
}

// addSporadic gives s n one-off bursts in [from, to) of fingerprints it does
// not otherwise report: an error template of its language on a route, new
// when it first happens.
func (g *generator) addSporadic(r *rand.Rand, s *service, n int, from, to time.Time) {
	pool := append(append([]errTemplate(nil), chronicErrors[s.spec.lang]...), regressionErrors[s.spec.lang]...)
	for range n {
		tmpl := pick(r, pool)
		fp := g.newFingerprint(r, s, tmpl, tmpl.msg)
		fp.id = contentHash(32, fp.id, "sporadic", HexID(r, 8))
		s.sporadic = append(s.sporadic, sporadic{fp: fp, at: from.Add(between(r, 0, to.Sub(from))), n: 1 + r.IntN(5)})
	}
}

// newFingerprint returns the fingerprint of tmpl in s, on a random route.
func (g *generator) newFingerprint(r *rand.Rand, s *service, tmpl errTemplate, msg string) fingerprint {
	method, route, _ := strings.Cut(pick(r, s.spec.routes), " ")
	return fingerprint{
		id:     contentHash(32, s.name, tmpl.typ, msg, route),
		tmpl:   tmpl,
		msg:    msg,
		method: method,
		route:  route,
	}
}

// topoOrder returns the service indices with every service after its
// dependencies. The pool's call graph is acyclic, which a test checks.
func (g *generator) topoOrder() []int {
	state := make([]int, len(g.svcs)) // 0 new, 1 visiting, 2 done
	var order []int
	var visit func(i int)
	visit = func(i int) {
		switch state[i] {
		case 1:
			panic(fmt.Sprintf("scenario: call graph has a cycle through %s", g.svcs[i].name))
		case 2:
			return
		}
		state[i] = 1
		for _, e := range g.svcs[i].deps {
			visit(e.to)
		}
		state[i] = 2
		order = append(order, i)
	}
	for i := range g.svcs {
		visit(i)
	}
	return order
}

// Bounds of a service's chronic error ratio, its own and inherited.
const (
	minBaseRatio = 0.0004
	maxBaseRatio = 0.005
)

// computeBaselines sets each service's chronic error ratio from its own and
// its dependencies', dependencies first. A service that inherits many
// failures gets fewer of its own, to stay within maxBaseRatio.
func (g *generator) computeBaselines() {
	for _, i := range g.order {
		s := g.svcs[i]
		inherited := 0.0
		for _, e := range s.deps {
			inherited += e.share * e.prop * g.svcs[e.to].baseRatio
		}
		for _, x := range s.exts {
			inherited += x.share * x.prop * x.base
		}
		s.ownRatio = max(min(s.ownRatio, maxBaseRatio-inherited), minBaseRatio/2)
		s.baseRatio = s.ownRatio + inherited
	}
}

// version is a semantic version.
type version struct{ major, minor, patch int }

func (v version) String() string { return fmt.Sprintf("v%d.%d.%d", v.major, v.minor, v.patch) }

// release is a version a service runs from a time on; after a partial
// rollout its canary shards run canary instead.
type release struct {
	from    time.Time
	version string
	canary  string
}

// splitByInstance makes s report its metrics per instance: n replicas of
// nearly equal traffic, the last k of which take a partial release.
func (g *generator) splitByInstance(r *rand.Rand, s *service, n, k int) {
	s.replicas = n
	sp := &split{labels: map[string]map[string]string{}}
	total := 0.0
	for i := range n {
		w := uniform(r, 0.9, 1.1)
		total += w
		sp.shards = append(sp.shards, shard{weight: w, canary: i >= n-k})
	}
	for i := range sp.shards {
		sp.shards[i].weight /= total
	}
	s.split = sp
}

// splitByRegion makes s report its metrics per region; canary is the region
// a partial release goes to, or "".
func (g *generator) splitByRegion(r *rand.Rand, s *service, canary string) {
	sp := &split{byRegion: true, labels: map[string]map[string]string{}}
	total := 0.0
	for _, rg := range regions {
		w := rg.share * uniform(r, 0.85, 1.15)
		total += w
		sp.shards = append(sp.shards, shard{region: rg.name, weight: w, canary: rg.name == canary})
	}
	for i := range sp.shards {
		sp.shards[i].weight /= total
	}
	s.split = sp
}

// canaryShare is the share of s's traffic its canary shards serve, 1 for a
// service that is not split.
func (s *service) canaryShare() float64 {
	if s.split == nil {
		return 1
	}
	share := 0.0
	for _, sh := range s.split.shards {
		if sh.canary {
			share += sh.weight
		}
	}
	return share
}

// canaryPods is how many of s's instances are canaries.
func (s *service) canaryPods() int {
	n := 0
	if s.split != nil {
		for _, sh := range s.split.shards {
			if sh.canary {
				n++
			}
		}
	}
	return n
}

// scope returns s and every service it calls, directly or not.
func (g *generator) scope(s int) []int {
	out := []int{s}
	seen := map[int]bool{s: true}
	for i := 0; i < len(out); i++ {
		for _, e := range g.svcs[out[i]].deps {
			if !seen[e.to] {
				seen[e.to] = true
				out = append(out, e.to)
			}
		}
	}
	return out
}

// edgeTo returns the edge from s to d, or nil.
func (s *service) edgeTo(d int) *edge {
	for _, e := range s.deps {
		if e.to == d {
			return e
		}
	}
	return nil
}
