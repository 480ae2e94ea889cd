// Package changes is what every change collector shares: the identity that
// lets several sources of one deploy (a GitHub deployment, the Argo CD sync
// that performed it, a `correlator mark` from CI) become one change, the
// Merger that combines them before they are written, a generic change
// webhook, and Mark, the client behind `correlator mark`.
//
// # Identity
//
// A deploy is identified by what it put where: its kind class, service,
// environment and version. Every source derives the same id from these:
//
//	id = IdentityID(c) = hex(SHA-256("correlator.change.identity.v1", class, service, environment, version)[:16])
//
// with each field length-prefixed, like the ingest ids. The parts are
// normalised so that the spellings sources use for one deploy agree:
//
//   - class: deploy and rollback share the class "deploy" (a rollback is a
//     deploy of an older version; a source that knows it is one makes the
//     merged change a rollback); config and infra are classes of their own.
//     Flags have no identity: each flag change carries its provider's event
//     id, and two sources of one flip are rare.
//   - service and environment: trimmed and lower-cased. Sources must name
//     the environment alike ("production" in GitHub, in the Argo CD mapping
//     and in `mark --env`); a source without an environment merges only
//     with others without one.
//   - version: the version string when the source knows one (a tag, an
//     image tag, a release), else the commit. When a source knows both a
//     tag and a commit it sets Version to the tag and Commit to the commit.
//     "refs/tags/" is dropped, a "v" before a digit is dropped ("v1.4.2" and
//     "1.4.2" are one version: git tags tend to have it, image tags not),
//     and a commit hash (7 to 64 hex digits with a letter, or exactly 40 or
//     64 hex digits) is lower-cased and cut to its first 7 digits, git's
//     short form, so a short and a full hash of one commit agree.
//
// A change without a version (and without a commit) has no identity: it is
// written as it comes.
package changes

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"

	"github.com/correlator/correlator/internal/event"
)

// SourcesAttr is the attribute listing, comma-separated and sorted, every
// source that reported a change.
const SourcesAttr = "sources"

// StatusAttr is the attribute a deploy collector sets to "succeeded" or
// "failed"; a merged change is "succeeded" when any source saw it succeed.
const StatusAttr = "status"

// The values of StatusAttr.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

const identityVersion = "correlator.change.identity.v1"

// class returns the identity class of a change kind, or false for kinds
// that have no identity (flags).
func class(k event.ChangeKind) (string, bool) {
	switch k {
	case event.ChangeDeploy, event.ChangeRollback:
		return "deploy", true
	case event.ChangeConfig:
		return "config", true
	case event.ChangeInfra:
		return "infra", true
	}
	return "", false
}

// IsCommit reports whether v looks like a git commit hash: 7 to 64 hex
// digits with at least one letter, or exactly 40 or 64 hex digits. A
// number such as a build number or a date is not one.
func IsCommit(v string) bool {
	n := len(v)
	if n < 7 || n > 64 {
		return false
	}
	letter := false
	for i := 0; i < n; i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			letter = true
		default:
			return false
		}
	}
	return letter || n == 40 || n == 64
}

// NormalizeVersion returns the form of a version used in identities (see
// the package documentation). The stored Version keeps the source's
// spelling.
func NormalizeVersion(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "refs/tags/")
	if IsCommit(v) {
		return strings.ToLower(v[:7])
	}
	if len(v) > 1 && (v[0] == 'v' || v[0] == 'V') && v[1] >= '0' && v[1] <= '9' {
		v = v[1:]
	}
	return v
}

// identityVersion returns the version part of c's identity: its version,
// else its commit.
func identityVersionOf(c *event.Change) string {
	if v := NormalizeVersion(c.Version); v != "" {
		return v
	}
	return NormalizeVersion(c.Commit)
}

// Identity returns the normalised identity of c, or false if c has none (a
// flag, or a change without version and commit). Two changes with equal
// identities are one change seen twice, provided they are close in time;
// the Merger decides that.
func Identity(c *event.Change) (Key, bool) {
	cl, ok := class(c.Kind)
	if !ok || c.Service == "" {
		return Key{}, false
	}
	v := identityVersionOf(c)
	if v == "" {
		return Key{}, false
	}
	return Key{
		Class:       cl,
		Service:     strings.ToLower(strings.TrimSpace(c.Service)),
		Environment: strings.ToLower(strings.TrimSpace(c.Environment)),
		Version:     v,
	}, true
}

// Key is a change's normalised identity.
type Key struct {
	Class, Service, Environment, Version string
}

// stream is the part of the key that orders deploys: one service in one
// environment.
func (k Key) stream() string {
	return HashID(k.Class, k.Service, k.Environment)
}

// ID returns the key's change id.
func (k Key) ID() string {
	return HashID(identityVersion, k.Class, k.Service, k.Environment, k.Version)
}

// IdentityID returns the id every source derives for c, or "" if c has no
// identity.
func IdentityID(c *event.Change) string {
	k, ok := Identity(c)
	if !ok {
		return ""
	}
	return k.ID()
}

// HashID returns an id for the given parts: the first 16 bytes of SHA-256,
// in hex, over the parts each prefixed by its length, so that no two lists
// of parts share an input. Collectors use it for ids derived from their
// source's own event ids.
func HashID(parts ...string) string {
	var b []byte
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
