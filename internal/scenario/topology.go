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
	replicas  int
	deps      []*edge
	callers   []int
	chronic   []fingerprint // weights sum to 1
	dayFactor []float64     // per day of data, around 1
	blips     []blip
	initial   version
	releases  []release // version timeline, set by finalizeChanges

	// incidentCoef is the part of the cause service's incident error ratio
	// that surfaces here (1 at the cause service, 0 where it does not reach);
	// incidentMs is the p95 latency it adds here at full effect.
	incidentCoef float64
	incidentMs   float64
}

// edge is a call dependency from one service to another.
type edge struct {
	to    int
	share float64     // fraction of the caller's requests that call the dependency
	prop  float64     // fraction of failed calls that fail the caller's request (the rest are retried or degraded)
	fp    fingerprint // how the caller reports such a failure
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
	g.order = g.topoOrder()
	g.computeBaselines()

	for _, s := range g.svcs {
		g.chooseChronic(r, s)
		s.dayFactor = make([]float64, g.opt.Days)
		for d := range s.dayFactor {
			s.dayFactor[d] = uniform(r, 0.9, 1.1)
		}
		// About one burst of a chronic error every other day.
		for range poisson(r, 0.5*float64(g.opt.Days)) {
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
		g.users[i] = "usr_" + hexID(r, 12)
	}
	g.customers = make([]string, numCustomers)
	for i := range g.customers {
		g.customers[i] = "cus_" + hexID(r, 10)
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

// chooseChronic gives s two to four chronic errors of its language, the
// first the most frequent.
func (g *generator) chooseChronic(r *rand.Rand, s *service) {
	pool := chronicErrors[s.spec.lang]
	n := 2 + r.IntN(3)
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
		s.ownRatio = max(min(s.ownRatio, maxBaseRatio-inherited), minBaseRatio/2)
		s.baseRatio = s.ownRatio + inherited
	}
}

// version is a semantic version.
type version struct{ major, minor, patch int }

func (v version) String() string { return fmt.Sprintf("v%d.%d.%d", v.major, v.minor, v.patch) }

// release is a version a service runs from a time on.
type release struct {
	from    time.Time
	version string
}
