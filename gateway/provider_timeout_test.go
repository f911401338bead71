package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// stallingUpstream answers as OpenAI would start to, headers and the first
// bytes of a body (a plain answer's, or a stream's first event), then
// sends nothing more until the test ends.
func stallingUpstream(t *testing.T) (url string) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Par\"}}]}\n\n"))
		} else {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"Par`))
		}
		w.(http.Flusher).Flush()
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL
}

// builtProvider is provider "a" (OpenAI's wire format at url) as serve
// builds it, with its HTTP client and this timeout.
func builtProvider(t *testing.T, url string, timeout time.Duration) llm.Provider {
	c := gateway.Config{Providers: map[string]gateway.ProviderConfig{"a": {Vendor: "openai", BaseURL: url, APIKeyEnv: "K", Timeout: timeout}},
		Routes: map[string][]string{"r": {"a/gpt-4o-mini"}}, Tenants: []gateway.TenantConfig{{Name: "t", APIKeyEnv: "K"}}}
	require.NoError(t, c.Validate())
	built, err := c.Build(func(string) string { return "sk-test" }, nil)
	require.NoError(t, err)
	return built.Providers["a"]
}

// TestProviderTimeoutBoundsTheCall: a provider's timeout bounds one
// upstream call from its request to the last byte of its body: a vendor
// that sends its headers and the start of an answer, then nothing, is cut
// off at the timeout, a plain call and a stream alike, when nothing else
// (the attempt's own timeout, the request's deadline) would end it sooner.
func TestProviderTimeoutBoundsTheCall(t *testing.T) {
	const timeout = 300 * time.Millisecond
	req := &llm.Request{Model: "gpt-4o-mini", Messages: []llm.Message{{Role: "user", Content: "Capital of France?"}}}
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "stream"}[stream], func(t *testing.T) {
			url := stallingUpstream(t)
			p := builtProvider(t, url, timeout)
			ended := make(chan error, 1)
			start := time.Now()
			go func() {
				if !stream {
					_, err := p.Complete(context.Background(), req)
					ended <- err
					return
				}
				st, err := p.Stream(context.Background(), req)
				if err != nil {
					ended <- err
					return
				}
				defer st.Close()
				c, err := st.Next()
				if err != nil || c.Content != "Par" {
					ended <- assert.AnError // the stream's start did not come through
					return
				}
				_, err = st.Next()
				ended <- err
			}()
			select {
			case err := <-ended:
				require.Error(t, err)
				assert.NotErrorIs(t, err, assert.AnError, "the stream's first event came through")
				assert.GreaterOrEqual(t, time.Since(start), timeout, "ended by the timeout, not before it")
			case <-time.After(30 * time.Second): // only a failure detector: the call ends at its timeout or never
				t.Fatal("a call stalled in its body was not cut off by its provider's timeout")
			}
		})
	}
}
