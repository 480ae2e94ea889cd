package jsonlines

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// identity tells files apart: device and inode follow a file through
// renames; the hash of its first line tells a truncated-and-rewritten file
// (copytruncate) or a reused inode from the file that was there before.
type identity struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
	FP  string `json:"fingerprint"`
}

// state is what survives a restart about one file: how far its lines were
// handed to the writer. It is kept per path for the file living at a
// configured path, and per identity once the file has been rotated away.
type state struct {
	Path string `json:"path"`
	identity
	Offset int64 `json:"offset"`
	// Line is the number of lines before Offset (blank and rejected ones
	// included), for line numbers in messages.
	Line int64 `json:"line"`
	// Rotated is set once the file no longer lives at Path.
	Rotated bool `json:"rotated,omitempty"`
	// Done is set when a rotated file has been read to its end and closed.
	Done    bool      `json:"done,omitempty"`
	Updated time.Time `json:"updated"`
}

// stateStore keeps the state files of one StateDir and an index of them by
// file identity. It belongs to the tailer's goroutine.
type stateStore struct {
	dir    string
	byID   map[identity]state // the furthest known state of each file
	byPath map[string]state   // the state of the file living at a path
}

func newStateStore(dir string) (*stateStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	return &stateStore{dir: dir, byID: map[identity]state{}, byPath: map[string]state{}}, nil
}

// load reads every state file. A file that cannot be read or decoded is
// reported and skipped: its log file is then read again from the start, and
// the replayed records keep their ids.
func (ss *stateStore) load() []error {
	entries, err := os.ReadDir(ss.dir)
	if err != nil {
		return []error{fmt.Errorf("read state directory: %w", err)}
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(ss.dir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("read state %s: %w", name, err))
			continue
		}
		var s state
		if err := json.Unmarshal(b, &s); err != nil {
			errs = append(errs, fmt.Errorf("decode state %s: %w", name, err))
			continue
		}
		ss.index(s)
	}
	return errs
}

func (ss *stateStore) index(s state) {
	if old, ok := ss.byID[s.identity]; !ok || s.Offset >= old.Offset {
		ss.byID[s.identity] = s
	}
	if !s.Rotated {
		if old, ok := ss.byPath[s.Path]; !ok || !s.Updated.Before(old.Updated) {
			ss.byPath[s.Path] = s
		}
	}
}

// fileName is the state file of s: per path for a live file, per identity
// for a rotated one.
func (ss *stateStore) fileName(s state) string {
	var key string
	prefix := "path-"
	if s.Rotated {
		prefix = "rotated-"
		key = fmt.Sprintf("%d:%d:%s", s.Dev, s.Ino, s.FP)
	} else {
		key = s.Path
	}
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(ss.dir, prefix+hex.EncodeToString(sum[:12])+".json")
}

// save writes s atomically: a reader (or a crash) sees the old state or the
// new one, never a mix. The rename is made durable by syncing the
// directory.
func (ss *stateStore) save(s state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	dst := ss.fileName(s)
	tmp, err := os.CreateTemp(ss.dir, ".state-*")
	if err != nil {
		return fmt.Errorf("save state of %s: %w", s.Path, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save state of %s: %w", s.Path, err)
	}
	if d, err := os.Open(ss.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	ss.index(s)
	return nil
}

// gc removes the state of files not tailed for longer than retention.
// held reports the identities and paths still in use.
func (ss *stateStore) gc(now time.Time, retention time.Duration, held func(state) bool) {
	for id, s := range ss.byID {
		if held(s) || now.Sub(s.Updated) < retention {
			continue
		}
		delete(ss.byID, id)
		rs := s
		rs.Rotated = true
		os.Remove(ss.fileName(rs))
		if p, ok := ss.byPath[s.Path]; ok && p.identity == id {
			delete(ss.byPath, s.Path)
			os.Remove(ss.fileName(p))
		}
	}
}
