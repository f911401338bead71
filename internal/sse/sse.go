// Package sse reads and writes server-sent events (the text/event-stream
// format) as the vendors' streaming APIs send them: "event:" and "data:"
// fields, comments, multi-line data, events ended by a blank line. The
// gateway's OpenAI front and the fake vendors both frame their events with
// AppendEvent, and the adapters read them with Reader.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxLine is the longest line a Reader accepts.
const MaxLine = 1 << 20

// ErrLineTooLong is returned for a line over MaxLine bytes.
var ErrLineTooLong = errors.New("sse: line too long")

// Event is one server-sent event.
type Event struct {
	Name string // the "event:" field; "" when absent
	Data []byte // the "data:" fields joined by newlines
}

// Done is the data of the event that ends an OpenAI stream.
const Done = "[DONE]"

// AppendEvent appends one event to dst and returns the extended slice:
// an "event:" line when name is not empty, one "data:" line per line of
// data (so data with newlines survives the trip), and the blank line that
// ends the event.
func AppendEvent(dst []byte, name string, data []byte) []byte {
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		dst = append(dst, "data: "...)
		dst = append(dst, line...)
		dst = append(dst, '\n')
		if !more {
			break
		}
		data = rest
	}
	return append(dst, '\n')
}

// Reader reads events from a stream. It is not safe for concurrent use.
type Reader struct {
	br *bufio.Reader
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 16<<10)}
}

// Next returns the next event. At the end of the stream it returns io.EOF
// when the last event was complete, and io.ErrUnexpectedEOF when the stream
// ended inside an event (a blank line never came).
func (r *Reader) Next() (Event, error) {
	var ev Event
	var data [][]byte
	started := false
	for {
		line, err := r.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if started {
					return Event{}, io.ErrUnexpectedEOF
				}
				return Event{}, io.EOF
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if !started {
				continue
			}
			ev.Data = bytes.Join(data, []byte{'\n'})
			return ev, nil
		}
		if line[0] == ':' {
			continue // a comment (keep-alive)
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimPrefix(value, []byte{' '})
		switch string(field) {
		case "event":
			ev.Name = string(value)
			started = true
		case "data":
			data = append(data, append([]byte(nil), value...))
			started = true
		}
		// id, retry and unknown fields are ignored, as the spec says.
	}
}

// readLine returns one line without its ending (\n, \r\n or \r\n).
func (r *Reader) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := r.br.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = append(line, chunk...)
		if len(line) > MaxLine {
			return nil, fmt.Errorf("%w (over %d bytes)", ErrLineTooLong, MaxLine)
		}
		if !isPrefix {
			return line, nil
		}
	}
}
