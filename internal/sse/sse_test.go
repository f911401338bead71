package sse_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/internal/sse"
)

func TestReader(t *testing.T) {
	in := ": keep-alive\n\nevent: message_start\ndata: {\"a\":1}\n\ndata: line1\ndata: line2\n\r\ndata:nospace\n\n"
	r := sse.NewReader(strings.NewReader(in))
	var got []sse.Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, ev)
	}
	require.Len(t, got, 3)
	assert.Equal(t, "message_start", got[0].Name)
	assert.Equal(t, `{"a":1}`, string(got[0].Data))
	assert.Equal(t, "line1\nline2", string(got[1].Data))
	assert.Equal(t, "nospace", string(got[2].Data))
}

func TestReaderCutMidEvent(t *testing.T) {
	for _, in := range []string{"data: {\"a\":", "data: {}\n", "event: x\n"} {
		r := sse.NewReader(strings.NewReader(in))
		_, err := r.Next()
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "input %q", in)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("event: a\ndata: b\n\n"))
	f.Add([]byte("data: [DONE]\n\n"))
	f.Add([]byte(":\n\ndata\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := sse.NewReader(strings.NewReader(string(in)))
		for range len(in) + 1 {
			if _, err := r.Next(); err != nil {
				return
			}
		}
		t.Fatal("Next kept returning events past the input's length")
	})
}

func TestAppendEvent(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"", `{"a":1}`, "data: {\"a\":1}\n\n"},
		{"message_stop", `{}`, "event: message_stop\ndata: {}\n\n"},
		{"", sse.Done, "data: [DONE]\n\n"},
		{"", "line1\nline2", "data: line1\ndata: line2\n\n"},
		{"", "", "data: \n\n"},
	} {
		got := sse.AppendEvent([]byte("prefix|"), tc.name, []byte(tc.data))
		assert.Equal(t, "prefix|"+tc.want, string(got), "AppendEvent(%q, %q)", tc.name, tc.data)
	}
}

// FuzzAppendEventRoundTrip: what AppendEvent writes, Reader reads back.
func FuzzAppendEventRoundTrip(f *testing.F) {
	f.Add("message_start", []byte(`{"type":"message_start"}`), []byte("second\nevent"))
	f.Add("", []byte(""), []byte("[DONE]"))
	f.Fuzz(func(t *testing.T, name string, a, b []byte) {
		// A name is one line without a leading space, and data holds no CR
		// (a line ending of its own): make every input such an event.
		name = strings.TrimLeft(strings.NewReplacer("\r", "", "\n", "").Replace(name), " ")
		a, b = bytes.ReplaceAll(a, []byte{'\r'}, nil), bytes.ReplaceAll(b, []byte{'\r'}, nil)
		stream := sse.AppendEvent(sse.AppendEvent(nil, name, a), "", b)
		r := sse.NewReader(strings.NewReader(string(stream)))
		for i, want := range []sse.Event{{Name: name, Data: a}, {Data: b}} {
			got, err := r.Next()
			require.NoError(t, err, "event %d of %q", i, stream)
			assert.Equal(t, want.Name, got.Name, "event %d of %q", i, stream)
			assert.Equal(t, string(want.Data), string(got.Data), "event %d of %q", i, stream)
		}
		_, err := r.Next()
		assert.ErrorIs(t, err, io.EOF)
	})
}
