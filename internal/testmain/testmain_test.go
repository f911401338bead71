package testmain_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brownout-dev/brownout/internal/testmain"
)

func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }

// TestShuffledInItsOwnTempDir checks Run from inside a binary it started:
// shuffling is on unless the command line set it, and temporary
// directories are made in the package's own directory, kept between runs.
func TestShuffledInItsOwnTempDir(t *testing.T) {
	given := false
	for _, a := range os.Args[1:] {
		given = given || strings.HasPrefix(a, "-test.shuffle")
	}
	if got := flag.Lookup("test.shuffle").Value.String(); !given && got != "on" {
		t.Errorf("-test.shuffle is %q with none on the command line; want on", got)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	own := filepath.Base(os.TempDir())
	if !strings.HasPrefix(own, "brownout-test-"+filepath.Base(wd)+"-") {
		t.Errorf("TMPDIR is %s; want the package's own brownout-test-%s-<hash>", os.TempDir(), filepath.Base(wd))
	}
	dir := t.TempDir()
	if filepath.Dir(filepath.Dir(dir)) != os.TempDir() {
		t.Errorf("t.TempDir() made %s, not in %s", dir, os.TempDir())
	}
}
