package fakeprovider_test

import (
	"testing"
	"time"

	"github.com/brownout-dev/brownout/fakeprovider"
)

const testKey = "sk-test-key"

// Model profiles the tests share: a non-thinking model answering "Paris"
// in one token, and a thinking model that spends 24 reasoning tokens first.
var (
	plainModel    = fakeprovider.Model{Answers: []fakeprovider.Answer{{Text: "Paris", Tokens: 1}}}
	thinkingModel = fakeprovider.Model{
		Answers:         []fakeprovider.Answer{{Text: "Paris", Tokens: 1}},
		ReasoningTokens: fakeprovider.Fixed(24),
		Thinking:        "The capital of France is Paris.",
	}
	// longModel thinks and then answers in 8 tokens: streams of many events.
	longModel = fakeprovider.Model{
		Answers:         []fakeprovider.Answer{{Text: "The capital of France is Paris.", Tokens: 8}},
		ReasoningTokens: fakeprovider.Fixed(24),
	}
)

func vendorConfig(v fakeprovider.Vendor, faults ...fakeprovider.Fault) fakeprovider.Config {
	models := map[fakeprovider.Vendor]map[string]fakeprovider.Model{
		fakeprovider.Anthropic: {"claude-haiku-4-5": plainModel, "claude-sonnet-4-5": thinkingModel},
		fakeprovider.Gemini:    {"gemini-2.5-flash": thinkingModel, "gemini-2.5-flash-lite": plainModel},
		fakeprovider.OpenAI:    {"gpt-4o-mini": plainModel, "o4-mini": thinkingModel},
	}
	models[v]["long-answer"] = longModel
	return fakeprovider.Config{Vendor: v, Seed: 7, APIKey: testKey, Models: models[v], Faults: faults}
}

func startFake(t *testing.T, cfg fakeprovider.Config) *fakeprovider.Server {
	t.Helper()
	s, err := fakeprovider.NewUnstartedServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func once(kind fakeprovider.FaultKind) fakeprovider.Fault {
	return fakeprovider.Fault{Kind: kind, Count: 1}
}

var shortRetry = 20 * time.Millisecond
