package gateway_test

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/gateway"
	"github.com/brownout-dev/brownout/gateway/ledger"
	"github.com/brownout-dev/brownout/gateway/llm"
)

// holdingProvider holds every call, after it has begun, until release is
// closed: a vendor still working on it.
type holdingProvider struct {
	llm.Provider
	arrived chan struct{}
	release chan struct{}
}

func (p holdingProvider) hold() {
	p.arrived <- struct{}{}
	<-p.release
}

func (p holdingProvider) Complete(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	p.hold()
	return p.Provider.Complete(ctx, req)
}

func (p holdingProvider) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	p.hold()
	return p.Provider.Stream(ctx, req)
}

func (p holdingProvider) EstimatePromptTokens(req *llm.Request) int64 {
	return p.Provider.(llm.PromptEstimator).EstimatePromptTokens(req)
}

// TestAnAttemptIsInTheLedgerBeforeItsCall: with Options.Unfinished, while
// the vendor works on a call, the ledger already has its row, unfinished
// and at the estimate of its prompt, which is what a crash of the gateway
// then would leave for a call the vendor bills; the finished row replaces
// it. The prompt's estimate by hand: OpenAI's rule of thumb, 40 characters
// at 4 a token and 4 tokens for the message, 14 tokens at gpt-4o-mini's
// $0.15 per million. (Seen red without the early record: no row until
// the call ended.)
func TestAnAttemptIsInTheLedgerBeforeItsCall(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "stream"}[stream], func(t *testing.T) {
			vendor := holdingProvider{arrived: make(chan struct{}), release: make(chan struct{})}
			g := twoTenants(t, func(o *gateway.Options) {
				o.Unfinished = true
				vendor.Provider = o.Providers["openai"]
				o.Providers["openai"] = vendor
			})
			ctx := context.Background()
			req := &gateway.Request{ID: gateway.NewRequestID(), Tenant: "acme", Route: "mini",
				LLM: llm.Request{Messages: []llm.Message{{Role: "user", Content: "What is the capital of France? One word."}}}}
			done := make(chan error, 1)
			go func() {
				if !stream {
					_, err := g.Complete(ctx, req)
					done <- err
					return
				}
				st, err := g.Stream(ctx, req)
				if err == nil {
					for err == nil {
						var c llm.Chunk
						if c, err = st.Next(); err == nil && c.Final {
							break
						}
					}
					if err == io.EOF {
						err = nil
					}
					_ = st.Close()
				}
				done <- err
			}()
			<-vendor.arrived

			rows, err := g.Store.RequestAttempts(ctx, req.ID)
			require.NoError(t, err)
			require.Len(t, rows, 1, "the attempt's row, before the vendor answered")
			assert.Equal(t, ledger.OutcomeUnfinished, rows[0].Outcome)
			assert.Equal(t, ledger.UsageEstimated, rows[0].UsageSource)
			assert.Equal(t, llm.Usage{Input: 14}, rows[0].Tokens)
			assert.Equal(t, "0.0000021", rows[0].Cost.String())

			close(vendor.release)
			require.NoError(t, <-done)
			rows, err = g.Store.RequestAttempts(ctx, req.ID)
			require.NoError(t, err)
			require.Len(t, rows, 1, "the finished row in its place")
			assert.Equal(t, ledger.OutcomeOK, rows[0].Outcome)
			assert.Equal(t, ledger.UsageReported, rows[0].UsageSource)
			assert.Equal(t, g.Fakes["openai"].Invoice().Totals.Cost.String(), rows[0].Cost.String(), "the vendor's bill")
		})
	}
}
