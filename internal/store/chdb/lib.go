package chdb

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

// The subset of chdb.h (libchdb 26.5) that correlator uses. The library is
// loaded with dlopen so that the binary runs without it when it talks to a
// ClickHouse server.
typedef struct { void *internal_data; } chdb_result;
typedef struct chdb_connection_ { void *internal_data; } *chdb_connection;

static void *lib;
static chdb_connection *(*p_connect)(int, char **);
static void (*p_close_conn)(chdb_connection *);
static chdb_result *(*p_query_params_n)(chdb_connection, const char *, size_t, const char *, size_t,
	const char *const *, const size_t *, const char *const *, const size_t *, size_t);
static chdb_result *(*p_stream_query_params_n)(chdb_connection, const char *, size_t, const char *, size_t,
	const char *const *, const size_t *, const char *const *, const size_t *, size_t);
static chdb_result *(*p_stream_fetch)(chdb_connection, chdb_result *);
static void (*p_stream_cancel)(chdb_connection, chdb_result *);
static void (*p_destroy)(chdb_result *);
static char *(*p_buffer)(chdb_result *);
static size_t (*p_length)(chdb_result *);
static const char *(*p_error)(chdb_result *);
static uint64_t (*p_rows_read)(chdb_result *);
static uint64_t (*p_storage_rows_read)(chdb_result *);
static uint64_t (*p_rows_written)(chdb_result *);
static double (*p_elapsed)(chdb_result *);

#define LOAD(var, name) do { *(void **)(&var) = dlsym(lib, name); if (!var) return name; } while (0)

// corr_load opens the library and resolves every symbol. It returns NULL on
// success, dlerror() text when the library cannot be opened, or the name of
// the missing symbol.
static const char *corr_load(const char *path) {
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) return dlerror();
	LOAD(p_connect, "chdb_connect");
	LOAD(p_close_conn, "chdb_close_conn");
	LOAD(p_query_params_n, "chdb_query_with_params_n");
	LOAD(p_stream_query_params_n, "chdb_stream_query_with_params_n");
	LOAD(p_stream_fetch, "chdb_stream_fetch_result");
	LOAD(p_stream_cancel, "chdb_stream_cancel_query");
	LOAD(p_destroy, "chdb_destroy_query_result");
	LOAD(p_buffer, "chdb_result_buffer");
	LOAD(p_length, "chdb_result_length");
	LOAD(p_error, "chdb_result_error");
	LOAD(p_rows_read, "chdb_result_rows_read");
	LOAD(p_storage_rows_read, "chdb_result_storage_rows_read");
	LOAD(p_rows_written, "chdb_result_rows_written");
	LOAD(p_elapsed, "chdb_result_elapsed");
	return NULL;
}

// The kernel's struct sigaction on x86_64, used with the raw syscall so that
// what is saved is restored bit for bit (glibc's wrapper would substitute its
// own sa_restorer for the Go runtime's).
struct corr_ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static const int corr_signals[] = {SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGTSTP, SIGSYS};
#define CORR_NSIG (sizeof(corr_signals) / sizeof(corr_signals[0]))

// corr_connect calls chdb_connect with the Go runtime's handlers of the
// synchronous signals saved before and restored after: the engine installs
// its own, and with them a nil dereference in Go code would hang the process
// in ClickHouse's crash handler instead of panicking. SIGRTMIN stays with the
// engine, which uses it for its own thread introspection.
static chdb_connection *corr_connect(int argc, char **argv) {
	struct corr_ksigaction saved[CORR_NSIG];
	for (size_t i = 0; i < CORR_NSIG; i++)
		syscall(SYS_rt_sigaction, corr_signals[i], NULL, &saved[i], 8);
	chdb_connection *c = p_connect(argc, argv);
	for (size_t i = 0; i < CORR_NSIG; i++)
		syscall(SYS_rt_sigaction, corr_signals[i], &saved[i], NULL, 8);
	return c;
}

static void corr_close(chdb_connection *c) { p_close_conn(c); }

static chdb_result *corr_query(chdb_connection *c, const char *q, size_t qlen, const char *fmt, size_t flen,
	const char *const *names, const size_t *nlens, const char *const *vals, const size_t *vlens, size_t n) {
	return p_query_params_n(*c, q, qlen, fmt, flen, names, nlens, vals, vlens, n);
}

static chdb_result *corr_stream(chdb_connection *c, const char *q, size_t qlen, const char *fmt, size_t flen,
	const char *const *names, const size_t *nlens, const char *const *vals, const size_t *vlens, size_t n) {
	return p_stream_query_params_n(*c, q, qlen, fmt, flen, names, nlens, vals, vlens, n);
}

static chdb_result *corr_fetch(chdb_connection *c, chdb_result *r) { return p_stream_fetch(*c, r); }
static void corr_cancel(chdb_connection *c, chdb_result *r) { p_stream_cancel(*c, r); }
static void corr_destroy(chdb_result *r) { p_destroy(r); }
static char *corr_buffer(chdb_result *r) { return p_buffer(r); }
static size_t corr_length(chdb_result *r) { return p_length(r); }
static const char *corr_error(chdb_result *r) { return p_error(r); }
static uint64_t corr_rows_read(chdb_result *r) { return p_rows_read(r); }
static uint64_t corr_storage_rows_read(chdb_result *r) { return p_storage_rows_read(r); }
static uint64_t corr_rows_written(chdb_result *r) { return p_rows_written(r); }
static double corr_elapsed(chdb_result *r) { return p_elapsed(r); }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"unsafe"
)

// PinnedVersion is the libchdb release that correlator is tested with; the
// make targets install it (scripts/install-chdb.sh) into DefaultLibPath.
const PinnedVersion = "26.5.3"

// DefaultLibPath is where scripts/install-chdb.sh puts the pinned library:
// the user's cache directory, outside any repository.
func DefaultLibPath() string {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "correlator", "chdb", PinnedVersion, "libchdb.so")
}

// LibPath resolves the library to load: an explicit path, then
// CORRELATOR_CHDB_LIB, then DefaultLibPath.
func LibPath(explicit string) string {
	if explicit != "" {
		return explicit
	}
	if p := os.Getenv("CORRELATOR_CHDB_LIB"); p != "" {
		return p
	}
	return DefaultLibPath()
}

var (
	loadOnce sync.Once
	loadErr  error
	loaded   string
)

// load opens the library once per process. The engine is process-global
// state, so a second, different path is an error rather than a silent reuse.
func load(path string) error {
	loadOnce.Do(func() {
		if _, err := os.Stat(path); err != nil {
			loadErr = fmt.Errorf("cannot find libchdb.so at %s (run `make chdb` or set CORRELATOR_CHDB_LIB): %w", path, err)
			return
		}
		cpath := C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
		if msg := C.corr_load(cpath); msg != nil {
			loadErr = fmt.Errorf("cannot load libchdb.so from %s: %s", path, C.GoString(msg))
			return
		}
		loaded = path
	})
	if loadErr != nil {
		return loadErr
	}
	if loaded != path {
		return fmt.Errorf("cannot load libchdb.so from %s: %s is already loaded in this process", path, loaded)
	}
	return nil
}

// errClosed is returned for calls on a closed engine.
var errClosed = errors.New("chdb: engine is closed")

// conn is one chdb connection. Queries on one connection are serialised
// inside the engine, and a streaming result interleaved with another query on
// the same connection corrupts both, so a conn is owned by one caller at a
// time: taken from the pool, returned when the caller is done.
type conn struct {
	c *C.chdb_connection
	// dirty is set after a failed query: the engine can leak the failed
	// query's partial output into the next result on the connection, so a
	// throwaway query runs before the next real one.
	dirty bool
}

func connect(path string) (*conn, error) {
	args := []string{"correlator", "--path=" + path}
	argv := (**C.char)(C.malloc(C.size_t(len(args)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(argv))
	av := unsafe.Slice(argv, len(args))
	for i, a := range args {
		av[i] = C.CString(a)
		defer C.free(unsafe.Pointer(av[i]))
	}
	// Keep the goroutine on one thread while the engine's signal handlers
	// are swapped in and out around chdb_connect.
	runtime.LockOSThread()
	c := C.corr_connect(C.int(len(args)), argv)
	runtime.UnlockOSThread()
	if c == nil {
		return nil, fmt.Errorf("open embedded store: chdb_connect to %s failed (is another data directory open in this process?)", path)
	}
	return &conn{c: c}, nil
}

func (c *conn) close() { C.corr_close(c.c) }

// cparams holds query parameters in C memory: cgo forbids C memory that
// points into Go memory, so names and values are copied into one C block.
type cparams struct {
	block        unsafe.Pointer
	names, vals  **C.char
	nlens, vlens *C.size_t
	n            int
}

func newParams(params map[string]string) *cparams {
	p := &cparams{n: len(params)}
	if p.n == 0 {
		return p
	}
	size := 0
	for k, v := range params {
		size += len(k) + len(v)
	}
	ptr := C.size_t(unsafe.Sizeof(uintptr(0)))
	sz := C.size_t(unsafe.Sizeof(C.size_t(0)))
	p.block = C.malloc(C.size_t(size) + 1)
	p.names = (**C.char)(C.malloc(C.size_t(p.n) * ptr))
	p.vals = (**C.char)(C.malloc(C.size_t(p.n) * ptr))
	p.nlens = (*C.size_t)(C.malloc(C.size_t(p.n) * sz))
	p.vlens = (*C.size_t)(C.malloc(C.size_t(p.n) * sz))
	buf := unsafe.Slice((*byte)(p.block), size+1)
	names, vals := unsafe.Slice(p.names, p.n), unsafe.Slice(p.vals, p.n)
	nlens, vlens := unsafe.Slice(p.nlens, p.n), unsafe.Slice(p.vlens, p.n)
	off, i := 0, 0
	for k, v := range params {
		copy(buf[off:], k)
		names[i], nlens[i] = (*C.char)(unsafe.Pointer(&buf[off])), C.size_t(len(k))
		off += len(k)
		copy(buf[off:], v)
		vals[i], vlens[i] = (*C.char)(unsafe.Pointer(&buf[off])), C.size_t(len(v))
		off += len(v)
		i++
	}
	return p
}

func (p *cparams) free() {
	if p.n == 0 {
		return
	}
	C.free(p.block)
	C.free(unsafe.Pointer(p.names))
	C.free(unsafe.Pointer(p.vals))
	C.free(unsafe.Pointer(p.nlens))
	C.free(unsafe.Pointer(p.vlens))
}

// stats are the engine's counters of one query.
type stats struct {
	RowsRead, StorageRowsRead, RowsWritten uint64
	Elapsed                                float64
}

// takeResult copies a result's bytes into Go memory and destroys it.
func takeResult(r *C.chdb_result) ([]byte, stats, error) {
	if r == nil {
		return nil, stats{}, fmt.Errorf("chdb: no result")
	}
	defer C.corr_destroy(r)
	if msg := C.corr_error(r); msg != nil {
		return nil, stats{}, &QueryError{Msg: C.GoString(msg)}
	}
	st := stats{
		RowsRead:        uint64(C.corr_rows_read(r)),
		StorageRowsRead: uint64(C.corr_storage_rows_read(r)),
		RowsWritten:     uint64(C.corr_rows_written(r)),
		Elapsed:         float64(C.corr_elapsed(r)),
	}
	n := C.corr_length(r)
	if n == 0 {
		return nil, st, nil
	}
	return C.GoBytes(unsafe.Pointer(C.corr_buffer(r)), C.int(n)), st, nil
}

// query runs one statement to completion and returns its output in format.
func (c *conn) query(query, format string, params map[string]string) ([]byte, stats, error) {
	p := newParams(params)
	defer p.free()
	q := C.CString(query)
	defer C.free(unsafe.Pointer(q))
	f := C.CString(format)
	defer C.free(unsafe.Pointer(f))
	r := C.corr_query(c.c, q, C.size_t(len(query)), f, C.size_t(len(format)), p.names, p.nlens, p.vals, p.vlens, C.size_t(p.n))
	out, st, err := takeResult(r)
	if err != nil {
		c.dirty = true
	}
	return out, st, err
}

// stream is a streaming result; it must be closed, and its conn is not
// usable for anything else until it is.
type stream struct {
	c *conn
	r *C.chdb_result
}

func (c *conn) stream(query, format string, params map[string]string) (*stream, error) {
	p := newParams(params)
	defer p.free()
	q := C.CString(query)
	defer C.free(unsafe.Pointer(q))
	f := C.CString(format)
	defer C.free(unsafe.Pointer(f))
	r := C.corr_stream(c.c, q, C.size_t(len(query)), f, C.size_t(len(format)), p.names, p.nlens, p.vals, p.vlens, C.size_t(p.n))
	if r == nil {
		return nil, fmt.Errorf("chdb: no result")
	}
	if msg := C.corr_error(r); msg != nil {
		err := &QueryError{Msg: C.GoString(msg)}
		C.corr_destroy(r)
		c.dirty = true
		return nil, err
	}
	return &stream{c: c, r: r}, nil
}

// next returns the next chunk, or nil at the end of the stream.
func (s *stream) next() ([]byte, error) {
	out, _, err := takeResult(C.corr_fetch(s.c.c, s.r))
	if err != nil {
		s.c.dirty = true
	}
	return out, err
}

// cancel stops the query; the stream must still be closed.
func (s *stream) cancel() { C.corr_cancel(s.c.c, s.r) }

func (s *stream) close() {
	if s.r != nil {
		C.corr_destroy(s.r)
		s.r = nil
	}
}

// QueryError is an error reported by the engine for a statement.
type QueryError struct{ Msg string }

func (e *QueryError) Error() string { return "clickhouse: " + e.Msg }
