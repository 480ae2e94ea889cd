// Package jsonlines tails JSON-lines log files (one JSON object per line,
// as slog, zap, logrus, pino or bunyan write them) into log records.
//
// # Wiring
//
// Config section `jsonlines:` (Config); a pull collector, run by `correlator
// serve` for as long as it serves:
//
//	t, err := jsonlines.New(cfg.JSONLines, batchWriter, logger, registry)
//	go func() { errc <- t.Run(ctx) }()   // returns when ctx ends
//
// It takes a Writer (*store.BatchWriter); when the writer also has
// Flush(ctx) error, as *store.BatchWriter does, the tailer flushes before
// it saves offsets (once per poll for all files, and after each batch of a
// long backlog), so a saved offset never runs ahead of what the store
// holds. Cancel ctx before closing the BatchWriter, and wait for Run to
// return, so that the last offsets are saved against a live writer.
//
// # Delivery
//
// Every tailed file has a small state file in Config.StateDir: its identity
// (device, inode, and a hash of its first line), the byte offset up to which
// its lines were handed to the writer, and the line count. The state is
// written atomically (temporary file, fsync, rename) after the writer took
// the batch (and flushed it, see above). A crash between the two replays the
// lines after the saved offset; each record's id is derived from the file's
// identity and the line's byte offset, so the replayed records carry the
// ids they had, and the store keeps one copy. Nothing is lost and nothing
// counts twice.
//
// Rotation by rename (logrotate's default): when the configured path names
// a new file, the old one is read on through the open handle for
// Config.RotateWait (writers may still be finishing a line), then closed,
// while the new file is read from its start. Its progress is kept in a state
// file of its own, so a restart during that time finishes it too (it is
// found again by device and inode in its directory). Rotation by
// copytruncate: a file shorter than the saved offset, or whose first line
// changed, is read again from its start; lines written between the last
// read and the truncation are lost, as with any tailer. Globs should match
// live files only (app.log, not app.log.1): a rotated copy matched by a
// glob is recognised when it is the same file (same inode), but a copy made
// by copytruncate is a new file and would be read again.
//
// # Lines
//
// A line that is not a JSON object, lacks a required field or holds a bad
// value is rejected: reported in the log with its file and line number,
// counted in correlator_collector_events_rejected_total by reason, and
// skipped; the tail goes on. Fields are mapped by Config.Fields; fields not
// mapped become attributes, nested objects flattened to dotted keys
// ({"http":{"method":"GET"}} gives http.method), arrays as their JSON text.
// Every record also carries log.file.path.
package jsonlines
