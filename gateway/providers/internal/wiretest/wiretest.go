// Package wiretest is what the vendor adapters' tests share: holding a
// decoder on a jsonscan.Scanner to wire.Decode, and benchmarking the two
// side by side.
package wiretest

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/brownout-dev/brownout/gateway/providers/internal/wire"
	"github.com/brownout-dev/brownout/internal/coldbench"
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

// decoders are decode, the scanner's, and wire.Decode, by reflection.
func decoders[T any](decode func([]byte) (T, error)) []struct {
	name   string
	decode func([]byte) (T, error)
} {
	return []struct {
		name   string
		decode func([]byte) (T, error)
	}{{"scanner", decode}, {"reflection", func(data []byte) (T, error) {
		var v T
		err := wire.Decode(data, &v)
		return v, err
	}}}
}

// BenchDecode decodes data with decode (the scanner's) and with
// wire.Decode, side by side in one run (sub-benchmarks "scanner" and
// "reflection"); whole says a decoded value has what data holds.
func BenchDecode[T any](b *testing.B, data []byte, decode func([]byte) (T, error), whole func(T) bool) {
	for _, d := range decoders(decode) {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if v, err := d.decode(data); err != nil || !whole(v) {
					b.Fatalf("%v, whole %v", err, err == nil && whole(v))
				}
			}
		})
	}
}

// BenchDecodeCold is BenchDecode with the caches emptied before each
// decode (coldbench.Run): ns/op is the median of the cold decodes alone.
func BenchDecodeCold[T any](b *testing.B, data []byte, decode func([]byte) (T, error), whole func(T) bool) {
	for _, d := range decoders(decode) {
		b.Run(d.name, func(b *testing.B) {
			coldbench.Run(b, func() bool {
				v, err := d.decode(data)
				return err == nil && whole(v)
			})
		})
	}
}
