// Package testmain is the TestMain of every test binary in the module. It
// does two things that let go test cache a passing package's result, so
// that a second `make test` on a tree with nothing changed takes seconds:
//
//   - It runs the package's tests in a shuffled order, as
//     `go test -shuffle=on` does, unless the command line says otherwise
//     (-shuffle=off, or -shuffle=N to replay one order). A -shuffle on go
//     test's command line would turn its cache off for every package; set
//     here, before the flags are parsed, it is not an argument. Each run
//     that does run is still in a new order, seeded from the clock; the
//     binary prints the seed (-test.shuffle N), which go test shows with
//     a failing package's output.
//
//   - It gives the package a temporary directory of its own, which
//     t.TempDir's directories go in. go test keys a cached result on the
//     files and directories the tests opened, and t.TempDir's clean-up
//     opens the directory above the test's (os.RemoveAll does): with all
//     of them in /tmp, anything that came or went there since would make
//     every such package run again.
//
// A test package's TestMain is
//
//	func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }
//
// or, for a package that needs Postgres, pgtest.Main, which calls Run.
// `make test` fails when a package with tests has neither.
package testmain

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Run runs m's tests, shuffled unless the command line's -test.shuffle
// says otherwise, with TMPDIR set to the package's own directory under
// the one TMPDIR named, and returns the exit code for os.Exit.
func Run(m *testing.M) int {
	// MainStart has registered the testing flags; m.Run parses the command
	// line, which overrides this default when it names -test.shuffle.
	if err := flag.Set("test.shuffle", "on"); err != nil {
		fmt.Fprintf(os.Stderr, "testmain: cannot shuffle: -test.shuffle: %v\n", err)
		return 2
	}
	if err := ownTempDir(); err != nil {
		fmt.Fprintf(os.Stderr, "testmain: %v\n", err)
		return 2
	}
	return m.Run()
}

// ownTempDir points TMPDIR at a directory named after the package's source
// directory (go test runs a test binary there), made if needed and kept
// between runs. Two binaries of one package at once (scripts/mutants.sh
// runs several) share it safely: t.TempDir's names are unique.
func ownTempDir() error {
	wd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("the package's directory: %w", err)
	}
	sum := sha256.Sum256([]byte(wd))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("brownout-test-%s-%x", filepath.Base(wd), sum[:4]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("the package's temporary directory: %w", err)
	}
	return os.Setenv("TMPDIR", dir)
}
