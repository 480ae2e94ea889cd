package scenario

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// bulkFingerprints is how many distinct fingerprints ErrorEvents draws from.
const bulkFingerprints = 300

// bulkInterval is the mean time between events of ErrorEvents: 100 a second.
const bulkInterval = 10 * time.Millisecond

// ErrorEvents returns n error events for ingest benchmarks, cheaply and
// deterministically from seed: realistic field sizes, a few hundred
// fingerprints of skewed frequency across every service of the pool, a few
// thousand users, times increasing from start at about 100 events a second.
// Unlike Generate it simulates no traffic, topology or incident.
func ErrorEvents(seed uint64, n int, start time.Time) []event.ErrorEvent {
	if n <= 0 {
		return nil
	}
	r := newRand(seed, streamBulk)
	start = start.UTC()

	type group struct {
		fp      fingerprint
		service string
		release [2]string // before and after the service's mid-run deploy
		deploy  int       // index of the first event on release[1]
		pods    []string
	}
	var all []group
	for _, sp := range servicePool {
		v := version{1 + r.IntN(3), 10 + r.IntN(70), 0}
		rel := [2]string{v.String(), version{v.major, v.minor + 1, 0}.String()}
		deploy := r.IntN(n + 1)
		pods := make([]string, 2+r.IntN(5))
		for i := range pods {
			pods[i] = sp.name + "-" + HexID(r, 10) + "-" + HexID(r, 5)
		}
		tmpls := append(append([]errTemplate(nil), chronicErrors[sp.lang]...), regressionErrors[sp.lang]...)
		for _, t := range tmpls {
			for _, route := range sp.routes {
				method, path, _ := strings.Cut(route, " ")
				all = append(all, group{
					fp: fingerprint{
						id:     contentHash(32, sp.name, t.typ, t.msg, path),
						tmpl:   t,
						msg:    t.msg,
						method: method,
						route:  path,
					},
					service: sp.name,
					release: rel,
					deploy:  deploy,
					pods:    pods,
				})
			}
		}
	}
	groups := make([]group, 0, bulkFingerprints)
	for _, i := range r.Perm(len(all))[:min(bulkFingerprints, len(all))] {
		groups = append(groups, all[i])
	}

	users := make([]string, numUsers)
	for i := range users {
		users[i] = "usr_" + HexID(r, 12)
	}
	customers := make([]string, numCustomers)
	for i := range customers {
		customers[i] = "cus_" + HexID(r, 10)
	}
	gz := rand.NewZipf(r, 1.1, 4, uint64(len(groups)-1))
	uz := rand.NewZipf(r, 1.1, 8, numUsers-1)

	out := make([]event.ErrorEvent, n)
	for i := range out {
		g := &groups[gz.Uint64()]
		rel := g.release[0]
		if i >= g.deploy {
			rel = g.release[1]
		}
		msg := g.fp.msg
		if strings.Contains(msg, "%d") {
			msg = fmt.Sprintf(msg, r.IntN(256))
		}
		var user, customer string
		if r.Float64() >= anonymousShare {
			u := uz.Uint64()
			user, customer = users[u], customers[u%numCustomers]
		}
		out[i] = event.ErrorEvent{
			ID:          HexID(r, 32),
			Time:        start.Add(time.Duration(i)*bulkInterval + between(r, 0, bulkInterval)),
			Service:     g.service,
			Environment: Environment,
			Release:     rel,
			Fingerprint: g.fp.id,
			Type:        g.fp.tmpl.typ,
			Message:     msg,
			UserID:      user,
			CustomerID:  customer,
			TraceID:     HexID(r, 32),
			Level:       g.fp.tmpl.level,
			SampleRate:  1,
			Attributes: map[string]string{
				"http.method":      g.fp.method,
				"http.route":       g.fp.route,
				"http.status_code": strconv.Itoa(g.fp.tmpl.status),
				"server_name":      pick(r, g.pods),
			},
		}
	}
	return out
}
