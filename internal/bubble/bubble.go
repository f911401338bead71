// Package bubble runs a function in a testing/synctest bubble from a
// program that is not a test, so that a command can do what the tests do:
// run a twenty-minute scenario in virtual time, in seconds, with the same
// report for the same seed on any machine, busy or not.
//
// synctest bubbles exist only under a *testing.T, and testing.T only under
// the testing package's runner. testing.Main is that runner's exported
// entry point, kept "for other systems that simulate go test": Exit hands
// it a single test whose body is the bubble. It ends the process from
// inside that test with the function's own status, so the runner prints
// nothing of its own.
package bubble

import (
	"flag"
	"os"
	"testing"
	"testing/synctest"
)

// Exit runs f in a synctest bubble, where time is virtual (it starts at
// midnight UTC 2000-01-01 and advances only when every goroutine of the
// bubble is blocked), and ends the process with the status f returns. It
// never returns. f must write its own output and wait for every goroutine
// it starts; one left blocked when f returns is a deadlock, and panics.
//
// It is for a program's main path: a test that wants a bubble calls
// synctest.Test.
func Exit(f func() int) {
	// testing.Main would parse the command line as go test's flags; the
	// program has parsed its own.
	if !flag.Parsed() {
		_ = flag.CommandLine.Parse(nil)
	}
	testing.Main(func(string, string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "bubble", F: func(t *testing.T) {
			code := 0
			synctest.Test(t, func(*testing.T) { code = f() })
			os.Exit(code)
		}}}, nil, nil)
	os.Exit(2) // testing.Main exits; this is never reached
}
