package fakeprovider_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/fakeprovider"
)

func TestLoadFile(t *testing.T) {
	f, err := fakeprovider.LoadFile("testdata/fakes.yaml")
	require.NoError(t, err)
	require.Len(t, f.Providers, 3)
	g := f.Providers["gemini"]
	assert.Equal(t, uint64(7), g.Seed)
	assert.Equal(t, uint64(42), f.Providers["openai"].Seed, "the file's seed is the default")
	assert.Equal(t, 5*time.Minute, g.Faults[0].From)
	assert.Equal(t, fakeprovider.Dist{Kind: "normal", Mean: 24, Stddev: 4}, g.Models["gemini-2.5-flash"].ReasoningTokens)
	assert.Equal(t, fakeprovider.Fixed(300), g.Models["gemini-2.5-flash"].TTFTms, "a bare number is a fixed distribution")
	for name, p := range f.Providers {
		s, err := fakeprovider.NewUnstartedServer(p)
		require.NoError(t, err, name)
		s.Close()
	}
}

func TestParseFileErrorsNameFileLineAndField(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown field", "providers:\n  a:\n    vendor: openai\n    modles: {}\n", `fakes.yaml:4:5: unknown field "modles"`},
		{"unknown vendor", "providers:\n  a:\n    vendor: mistral\n    models: {m: {}}\n", `fakes.yaml:3:13: field providers.a.vendor: unknown vendor "mistral"`},
		{"bad probability", "providers:\n  a:\n    vendor: openai\n    models: {m: {}}\n    faults:\n      - kind: hang\n        probability: 1.5\n", `fakes.yaml:7:22: field providers.a.faults[0].probability: must be in [0, 1], got 1.5`},
		{"unknown fault", "providers:\n  a:\n    vendor: openai\n    models: {m: {}}\n    faults: [{kind: meteor}]\n", `field providers.a.faults[0].kind: unknown fault kind "meteor"`},
		{"fault on unknown model", "providers:\n  a:\n    vendor: openai\n    models: {m: {}}\n    faults: [{kind: hang, models: [x]}]\n", `field providers.a.faults[0].models: model "x" is not one of this provider's models`},
		{"bad distribution", "providers:\n  a:\n    vendor: openai\n    models:\n      m: {ttft_ms: {kind: uniform, min: 5, max: 1}}\n", `field providers.a.models.m.ttft_ms: uniform needs 0 <= min <= max`},
		{"bad duration", "providers:\n  a:\n    vendor: openai\n    models: {m: {}}\n    faults: [{kind: outage, from: soon}]\n", `fakes.yaml:5:`},
		{"no providers", "seed: 1\n", `field providers: at least one provider is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fakeprovider.ParseFile("fakes.yaml", []byte(tt.src))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
