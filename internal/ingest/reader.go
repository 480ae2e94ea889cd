package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// arrayReader splits a streamed JSON array into its elements without
// decoding them, counting lines as it goes so that every element can be
// reported by the line it starts on. json.Decoder could split the array too,
// but it knows byte offsets, not lines, and it cannot skip an oversized
// element without buffering all of it.
//
// The split only tracks strings and bracket depth; each element is then
// validated on its own, so a malformed element is caught before its members
// are read.
type arrayReader struct {
	br   *bufio.Reader
	line int    // line of the next unread byte
	max  int    // longest element kept, in bytes
	buf  []byte // the current element; reused
}

// peek skips whitespace and returns the next byte without consuming it; ok is
// false at the end of the input.
func (a *arrayReader) peek() (c byte, ok bool, err error) {
	for {
		c, err := a.br.ReadByte()
		if err == io.EOF {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("read input: %w", err)
		}
		if !isSpace(c) {
			a.br.UnreadByte()
			return c, true, nil
		}
		if c == '\n' {
			a.line++
		}
	}
}

// value consumes the next element and returns its bytes, valid until the
// next call. An element longer than max is consumed but not kept: tooLong is
// set and elem is nil. An element that the end of input cuts short is
// returned as it is; it fails validation.
func (a *arrayReader) value() (elem []byte, tooLong bool, err error) {
	a.buf = a.buf[:0]
	var (
		size   int // bytes consumed so far
		first  = true
		scalar bool // a number or literal: ends at a delimiter
		inStr  bool
		esc    bool
		depth  int
	)
	for {
		chunk, rerr := a.br.Peek(1)
		if len(chunk) == 0 {
			if rerr == io.EOF || rerr == nil {
				return a.buf, tooLong, nil
			}
			return nil, false, fmt.Errorf("read input: %w", rerr)
		}
		chunk, _ = a.br.Peek(a.br.Buffered())
		i, done := 0, false
	scan:
		for i < len(chunk) {
			c := chunk[i]
			switch {
			case first:
				first = false
				switch c {
				case '{', '[':
					depth = 1
				case '"':
					inStr = true
				default:
					scalar = true
				}
				i++
			case esc:
				esc = false
				i++
			case inStr:
				// Jump to the next quote or backslash: most of an
				// element is string contents.
				rest := chunk[i:]
				q := bytes.IndexByte(rest, '"')
				if q < 0 {
					q = len(rest)
				}
				if bs := bytes.IndexByte(rest[:q], '\\'); bs >= 0 {
					i += bs + 1
					esc = true
					continue
				}
				if q == len(rest) {
					i = len(chunk)
					continue
				}
				i += q + 1
				inStr = false
				if depth == 0 {
					done = true
					break scan
				}
			case scalar:
				switch c {
				case ',', ']', '}', ' ', '\t', '\r', '\n':
					done = true
					break scan
				}
				i++
			default:
				i++
				switch c {
				case '"':
					inStr = true
				case '{', '[':
					depth++
				case '}', ']':
					depth--
					if depth == 0 {
						done = true
						break scan
					}
				}
			}
		}
		size += i
		if size > a.max {
			tooLong = true
			a.buf = a.buf[:0]
		} else {
			a.buf = append(a.buf, chunk[:i]...)
		}
		a.line += bytes.Count(chunk[:i], []byte{'\n'})
		a.br.Discard(i)
		if done {
			if tooLong {
				return nil, true, nil
			}
			return a.buf, false, nil
		}
	}
}

// syntaxError describes why b is not valid JSON, and on which line of b, from
// 0, the problem lies.
func syntaxError(b []byte) (line int, msg string) {
	var v struct{}
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		if len(b) == 0 {
			return 0, "invalid JSON: unexpected end of input"
		}
		return 0, "invalid JSON"
	}
	off := min(int(se.Offset), len(b))
	return bytes.Count(b[:off], []byte{'\n'}), "invalid JSON: " + se.Error()
}
