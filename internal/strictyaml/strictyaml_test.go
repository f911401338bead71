package strictyaml_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brownout-dev/brownout/internal/strictyaml"
)

type doc struct {
	Name  string          `yaml:"name"`
	Wait  time.Duration   `yaml:"wait"`
	Items map[string]item `yaml:"items"`
}

type item struct {
	Weight float64 `yaml:"weight"`
}

func (d *doc) Validate() error {
	var errs []error
	for k, it := range d.Items {
		if it.Weight < 0 {
			errs = append(errs, strictyaml.Errorf("$.items."+strictyaml.Key(k)+".weight", "must not be negative, got %v", it.Weight))
		}
	}
	if d.Name == "" {
		errs = append(errs, strictyaml.Errorf("$.name", "is required"))
	}
	return errors.Join(errs...)
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown field", "name: x\nitems:\n  a:\n    weigth: 1\n", "f.yaml:4:5: unknown field \"weigth\""},
		{"wrong type", "name: x\nwait: soon\n", "f.yaml:2:"},
		{"duplicate key", "name: x\nname: y\n", "f.yaml:2:1:"},
		{"bad value located", "name: x\nitems:\n  a:\n    weight: 1\n  b:\n    weight: -2\n", "f.yaml:6:13: field items.b.weight: must not be negative, got -2"},
		{"missing field at its parent", "items: {}\n", "f.yaml: field name: is required"},
		{"empty", "\n", "f.yaml: file is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			err := strictyaml.Decode("f.yaml", []byte(tt.src), &d)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDecodeValid(t *testing.T) {
	var d doc
	require.NoError(t, strictyaml.Decode("f.yaml", []byte("name: x\nwait: 1m30s\nitems:\n  a: {weight: 0.5}\n"), &d))
	assert.Equal(t, 90*time.Second, d.Wait)
	assert.Equal(t, 0.5, d.Items["a"].Weight)
}
