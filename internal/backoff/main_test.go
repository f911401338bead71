package backoff_test

import (
	"os"
	"testing"

	"github.com/brownout-dev/brownout/internal/testmain"
)

// TestMain shuffles the tests' order (internal/testmain).
func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }
