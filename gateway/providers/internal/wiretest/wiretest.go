// Package wiretest is what the vendor adapters' tests share: holding a
// decoder on a jsonscan.Scanner to wire.Decode.
package wiretest

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/brownout-dev/brownout/gateway/providers/internal/wire"
)

// AgreesWithDecode fails t unless decode and wire.Decode both fail on
// data, or both decode it to the same value.
func AgreesWithDecode[T any](t *testing.T, data []byte, decode func([]byte) (T, error)) {
	t.Helper()
	var want T
	wantErr := wire.Decode(data, &want)
	got, err := decode(data)
	if (wantErr == nil) != (err == nil) {
		t.Fatalf("%q: Decode's error %v, the scanner's %v", data, wantErr, err)
	}
	if err == nil {
		assert.Equal(t, want, got, "%q", data)
	}
}
