package sse_test

import (
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
