package pgtest_test

import (
	"testing"

	"github.com/brownout-dev/brownout/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
