// Package logpattern mines log templates online with Drain (He, Zhu,
// Zheng and Lyu, "Drain: An Online Log Parsing Approach with Fixed Depth
// Tree", ICWS 2017) and compares two windows of logs to find the templates
// that appeared, or became more frequent, after a change: Diff mines the
// two windows, a Timeline mines a longer span once and compares any
// windows inside it.
//
// A Miner masks the obvious values of each line (see Wildcard), splits it
// on white space and walks a tree of fixed depth: first by the number of
// tokens, then by the first Depth-2 tokens, a token holding a digit going
// down a wildcard branch. The leaf holds clusters, each with a template.
// The line joins the cluster whose template it most resembles, if the
// resemblance reaches SimThreshold, and the template's differing
// positions become Wildcard; otherwise it starts a cluster of its own.
//
// Resemblance is the fraction of the template's constant positions (those
// that are not Wildcard) whose token the line repeats. A template
// position "key=<*>" is constant and accepts any "key=..." token.
//
// Drain is greedy and online, so the templates can depend on the order of
// the lines: with lines A, B, C where B resembles both A and C but A does
// not resemble C, the order A, B, C gives one cluster (B generalises A's
// template, which then accepts C) and the order A, C, B gives two. Lines
// that are instances of one format with values in the same positions do
// not hit this: they end in one cluster whatever the order.
//
// Clusters never merge once made, so the cluster a line joined stays the
// one it belongs to; only the template text becomes more general.
package logpattern

import (
	"slices"
	"strings"
)

// Options configure a Miner. The zero value means the defaults.
type Options struct {
	// Depth is the depth of the parse tree counting the root, the
	// token-count layer and the leaf: lines are routed by their first
	// Depth-2 tokens. Default 4; values below 2 mean 2 (routing by the
	// token count alone).
	Depth int
	// SimThreshold is the least resemblance, in (0, 1], for a line to
	// join a cluster. Default 0.5; values above 1 mean 1.
	SimThreshold float64
	// MaxChildren bounds the children of a tree node; tokens beyond it
	// share the node's wildcard branch. Default 100.
	MaxChildren int
	// MaxClusters bounds the clusters kept; beyond it the least recently
	// used cluster (by Add) is forgotten. Default 5000.
	MaxClusters int
}

func (o Options) withDefaults() Options {
	if o.Depth <= 0 {
		o.Depth = 4
	}
	if o.Depth < 2 {
		o.Depth = 2
	}
	if !(o.SimThreshold > 0) { // NaN too
		o.SimThreshold = 0.5
	}
	if o.SimThreshold > 1 {
		o.SimThreshold = 1
	}
	if o.MaxChildren <= 0 {
		o.MaxChildren = 100
	}
	if o.MaxClusters <= 0 {
		o.MaxClusters = 5000
	}
	return o
}

// maxIntern bounds the table of masked tokens shared between lines. When
// it is full it starts again empty: it saves allocations, nothing more.
const maxIntern = 1 << 16

// Miner learns log templates from lines. It is not safe for concurrent
// use, Match included (Match uses the Miner's scratch space).
type Miner struct {
	opt    Options
	layers int // token layers of the tree: Depth-2

	roots    map[int]*node    // by token count
	clusters map[int]*cluster // live clusters by ID
	lru      cluster          // sentinel: lru.next is the most recently used
	lastID   int

	// Scratch space for one line, reused to keep Add free of allocations
	// for lines of known shapes.
	in, out []byte
	tokens  []string
	// intern maps a masked token to one string for it, so that masking
	// the same value shape again does not allocate.
	intern map[string]string
}

// node is a node of the parse tree. A node is a leaf exactly when it is
// at depth min(layers, token count) below its root; only leaves hold
// clusters and only inner nodes hold children.
type node struct {
	parent   *node
	key      string // token leading here from parent; Wildcard for the wildcard branch
	length   int    // token count of the lines below
	children map[string]*node
	wildcard *node
	// overflow is set once a token found the node full and went to the
	// wildcard branch. It stays set when children are pruned, so that a
	// line keeps the route it had when its cluster was made.
	overflow bool
	clusters []*cluster
}

// cluster is a group of lines with one template.
type cluster struct {
	id       int
	template string   // tokens joined by single spaces
	tokens   []string // substrings of template
	count    int
	example  string // the first line, verbatim
	leaf     *node

	prev, next *cluster // LRU list, most recent first
}

// New returns an empty Miner.
func New(opt Options) *Miner {
	m := &Miner{
		opt:      opt.withDefaults(),
		roots:    make(map[int]*node),
		clusters: make(map[int]*cluster),
		intern:   make(map[string]string),
	}
	m.layers = m.opt.Depth - 2
	m.lru.next, m.lru.prev = &m.lru, &m.lru
	return m
}

// Add learns line and returns the ID of its cluster and the cluster's
// template after the line. IDs start at 1 and are never reused, not even
// after a cluster is evicted.
func (m *Miner) Add(line string) (clusterID int, template string) {
	c := m.add(line)
	return c.id, c.template
}

// Match returns the cluster Add would put line in without learning
// anything: templates, counts and recency stay as they are. ok is false if
// Add would start a new cluster.
func (m *Miner) Match(line string) (clusterID int, ok bool) {
	tokens := m.tokenize(line, false)
	leaf := m.route(tokens, false)
	if leaf == nil {
		return 0, false
	}
	c := m.best(leaf, tokens)
	if c == nil {
		return 0, false
	}
	return c.id, true
}

// Template describes a cluster.
type Template struct {
	ID       int
	Template string
	// Count is the number of lines added to the cluster.
	Count int
	// Example is the first line of the cluster, as it was given.
	Example string
}

// Templates returns the live clusters by count, most first, then by ID.
func (m *Miner) Templates() []Template {
	out := make([]Template, 0, len(m.clusters))
	for _, c := range m.clusters {
		out = append(out, Template{ID: c.id, Template: c.template, Count: c.count, Example: c.example})
	}
	slices.SortFunc(out, func(a, b Template) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return a.ID - b.ID
	})
	return out
}

// add learns line and returns its cluster.
func (m *Miner) add(line string) *cluster {
	tokens := m.tokenize(line, true)
	leaf := m.route(tokens, true)
	c := m.best(leaf, tokens)
	if c == nil {
		c = m.newCluster(leaf, tokens, line)
	} else {
		c.merge(tokens)
	}
	c.count++
	m.touch(c)
	for len(m.clusters) > m.opt.MaxClusters {
		m.evict(m.lru.prev)
	}
	return c
}

// tokenize splits line into masked tokens, held in m.tokens until the
// next call. With intern set, masked tokens not seen before are kept for
// reuse.
func (m *Miner) tokenize(line string, intern bool) []string {
	tokens := m.tokens[:0]
	for i := 0; ; {
		start, end := nextToken(line, i)
		if start == end {
			break
		}
		i = end
		tok := line[start:end]
		var b []byte
		b, m.in, m.out = maskToken(append(m.in[:0], tok...), m.out)
		switch {
		case string(b) == tok:
		case string(b) == Wildcard:
			tok = Wildcard
		default:
			if s, ok := m.intern[string(b)]; ok {
				tok = s
				break
			}
			tok = string(b)
			if intern {
				if len(m.intern) >= maxIntern {
					clear(m.intern)
				}
				m.intern[tok] = tok
			}
		}
		tokens = append(tokens, tok)
	}
	m.tokens = tokens
	return tokens
}

// route returns the leaf for tokens. With create set it makes the nodes
// missing on the way; without, it returns nil where Add would have made
// one, which means Add would start a new cluster.
func (m *Miner) route(tokens []string, create bool) *node {
	n := m.roots[len(tokens)]
	if n == nil {
		if !create {
			return nil
		}
		n = &node{length: len(tokens)}
		m.roots[len(tokens)] = n
	}
	for i := 0; i < m.layers && i < len(tokens); i++ {
		tok := tokens[i]
		if !hasDigit(tok) && tok != Wildcard {
			if c := n.children[tok]; c != nil {
				n = c
				continue
			}
			full := n.overflow || len(n.children) >= m.opt.MaxChildren-1
			if !full {
				if !create {
					return nil
				}
				c := &node{parent: n, key: tok, length: n.length}
				if n.children == nil {
					n.children = make(map[string]*node)
				}
				n.children[tok] = c
				n = c
				continue
			}
			if create {
				n.overflow = true
			}
		}
		if n.wildcard == nil {
			if !create {
				return nil
			}
			n.wildcard = &node{parent: n, key: Wildcard, length: n.length}
		}
		n = n.wildcard
	}
	return n
}

// best returns the cluster of leaf that tokens resemble most, or nil if
// none reaches the threshold. Ties go to the template with more matching
// constant tokens, the more specific one, then to the older cluster.
func (m *Miner) best(leaf *node, tokens []string) *cluster {
	var best *cluster
	bestEq, bestConst := 0, 0
	for _, c := range leaf.clusters {
		eq, consts := resemblance(c.tokens, tokens)
		if consts == 0 {
			eq, consts = 1, 1 // all wildcards: accepts any line of its leaf
		}
		if float64(eq) < m.opt.SimThreshold*float64(consts) {
			continue
		}
		if best != nil {
			// Compare eq/consts with bestEq/bestConst exactly.
			l, r := eq*bestConst, bestEq*consts
			if l < r || l == r && (eq < bestEq || eq == bestEq && c.id > best.id) {
				continue
			}
		}
		best, bestEq, bestConst = c, eq, consts
	}
	return best
}

// resemblance returns the number of constant positions of template and
// how many of them tokens repeat. The slices have the same length.
func resemblance(template, tokens []string) (eq, consts int) {
	for i, t := range template {
		if t == Wildcard {
			continue
		}
		consts++
		if t == tokens[i] || keyMatch(t, tokens[i]) {
			eq++
		}
	}
	return eq, consts
}

// keyMatch reports whether t is "key=<*>" and tok is key=anything.
func keyMatch(t, tok string) bool {
	n := len(t) - len(Wildcard)
	return n > 0 && t[n-1] == '=' && t[n:] == Wildcard && len(tok) >= n && tok[:n] == t[:n]
}

// generalize returns the template token that accepts both t and tok:
// "key=<*>" if both are key=value with one key, else Wildcard. It is
// associative and commutative, so the template of a cluster does not
// depend on the order in which its lines came.
func generalize(t, tok string) string {
	if k := keyPrefix(t); k != "" && k == keyPrefix(tok) {
		return k + Wildcard
	}
	return Wildcard
}

func (m *Miner) newCluster(leaf *node, tokens []string, line string) *cluster {
	m.lastID++
	c := &cluster{id: m.lastID, example: strings.Clone(line), leaf: leaf}
	c.setTokens(tokens)
	leaf.clusters = append(leaf.clusters, c)
	m.clusters[c.id] = c
	return c
}

// setTokens sets the template to tokens, copied: the template owns its
// memory rather than pinning the line or the intern table.
func (c *cluster) setTokens(tokens []string) {
	c.template = strings.Join(tokens, " ")
	if len(tokens) == 0 {
		c.tokens = nil
		return
	}
	c.tokens = strings.Split(c.template, " ")
}

// merge generalises the template where tokens disagree with it.
func (c *cluster) merge(tokens []string) {
	var merged []string
	for i, t := range c.tokens {
		if t == Wildcard || t == tokens[i] || keyMatch(t, tokens[i]) {
			continue
		}
		if merged == nil {
			merged = slices.Clone(c.tokens)
		}
		merged[i] = generalize(t, tokens[i])
	}
	if merged != nil {
		c.setTokens(merged)
	}
}

// touch makes c the most recently used cluster.
func (m *Miner) touch(c *cluster) {
	if c.prev != nil {
		c.prev.next, c.next.prev = c.next, c.prev
	}
	c.prev, c.next = &m.lru, m.lru.next
	m.lru.next.prev = c
	m.lru.next = c
}

// evict forgets c and prunes the tree nodes left empty.
func (m *Miner) evict(c *cluster) {
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
	delete(m.clusters, c.id)
	n := c.leaf
	i := slices.Index(n.clusters, c)
	n.clusters = slices.Delete(n.clusters, i, i+1)
	for len(n.clusters) == 0 && len(n.children) == 0 && n.wildcard == nil {
		p := n.parent
		switch {
		case p == nil:
			delete(m.roots, n.length)
			return
		case n.key == Wildcard && p.wildcard == n:
			p.wildcard = nil
		default:
			delete(p.children, n.key)
		}
		n = p
	}
}
