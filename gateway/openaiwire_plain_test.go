package gateway

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzPlainPathAgreesWithFullPath: whatever body decodeChat's one-pass
// path takes, the full path decodes to the same request, parameters and
// error; the bodies it does not take go to the full path. The seeds run
// in every `go test`.
func FuzzPlainPathAgreesWithFullPath(f *testing.F) {
	for _, body := range []string{
		`{"model":"chat","messages":[{"role":"user","content":"What is the capital of France?"}]}`,
		`{"model":"chat","messages":[{"role":"system","content":""},{"role":"user","content":"hi"}],"max_tokens":5,"temperature":0.5,"stop":"x"}`,
		`{"model":"chat","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":0}`,
		`{"model":"chat","messages":[{"role":"user","content":"hi"}],"temperature":3}`,
		`{"model":"chat","messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}`,
		`{"model":"chat","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"chat","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
		`{"model":"chat","messages":[{"role":"user","content":null}]}`,
		`{"model":"chat","messages":[{"role":"tool","content":"x"}]}`,
		`{"model":"chat","messages":[{"role":"user","content":"hi"}]} trailing`,
		`{"model":"","messages":[]}`,
		`{"MODEL":"chat","Messages":[{"ROLE":"user","Content":"case"}]}`,
		// Found by fuzzing a one-pass path that matched names by case alone.
		`{"model":"0","messages":[{"role":"user","content":""}],"streAm":true,"000000000":{}}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, _, ok := plain(body); !ok {
			return
		}
		in, req, err := decodeChat(body)
		fin, freq, ferr := decodeChatFully(body)
		require.Equal(t, ferr == nil, err == nil, "errors: %v; full path: %v", err, ferr)
		if err != nil {
			assert.Equal(t, ferr.Error(), err.Error())
			return
		}
		assert.Equal(t, freq, req)
		assert.Equal(t, fin.Model, in.Model)
		assert.Equal(t, fin.Stream, in.Stream)
		assert.Equal(t, fin.StreamOptions, in.StreamOptions)
	})
}
