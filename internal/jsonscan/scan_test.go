package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/brownout-dev/brownout/internal/jsonscan"
	"github.com/brownout-dev/brownout/internal/testmain"
)

// TestMain shuffles the tests' order (internal/testmain).
func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }

// skipAll reads body with nothing wanted and says whether it was taken.
func skipAll(body []byte) bool {
	s := jsonscan.NewScanner(body)
	for s.Field() {
		s.Skip()
	}
	return s.End() == nil
}

// plainObject reports whether body is one JSON object, by encoding/json,
// whose text has no escape or byte beyond ASCII and whose nesting is at
// most depth: what a Scanner must take.
func plainObject(body []byte, depth int) bool {
	if !json.Valid(body) || bytes.ContainsAny(body, `\`) || strings.ContainsFunc(string(body), func(r rune) bool { return r >= 0x80 }) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	deepest, d := 0, 0
	for i := 0; ; i++ {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return deepest <= depth
		}
		if err != nil || i == 0 && tok != json.Delim('{') {
			return false
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			d++
			deepest = max(deepest, d)
		case json.Delim('}'), json.Delim(']'):
			d--
		}
	}
}

// FuzzScannerChecksSyntax: a Scanner takes a body only if encoding/json
// finds it valid, and takes every plain object (plainObject) that is.
func FuzzScannerChecksSyntax(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "a" : [ 1 , -2.5e+3 , true , false , null , "x" , { } , [ ] ] } `, `{"a":{"b":{"c":[[[0]]]}}}`,
		`{"a":1,}`, `{"a" 1}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":nul}`,
		`{"a":"\u12"}`, `{"a":"\x"}`, "{\"a\":\"\t\"}", `{"a":[1 2]}`, `{"a":[1,]}`, `{"a":1]`, `{"a":[}`, `[1]`, `"a"`, `{} {}`, `{}x`, ``,
		`{"a":"\"\\\/\b\f\n\r\t\u00e9"}`, `{"\u0061":1}`, "{\"a\":\"\xff\"}", "{\"\xc3\xa9\":1}",
		strings.Repeat(`{"a":`, 32) + `1` + strings.Repeat(`}`, 32), strings.Repeat(`{"a":`, 33) + `1` + strings.Repeat(`}`, 33),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		took := skipAll(body)
		if took && !json.Valid(body) {
			t.Fatalf("took %q, which encoding/json finds invalid", body)
		}
		if !took && plainObject(body, 32) {
			t.Fatalf("declined %q, a plain object", body)
		}
	})
}

// TestOrNull: StringOrNull, IntOrNull and IntOrNil read null as the
// empty value a reflection decoder leaves, a value as String and Int read
// it, and decline any other kind.
func TestOrNull(t *testing.T) {
	read := func(body string) (string, int64, bool) {
		s := jsonscan.NewScanner([]byte(body))
		var str string
		var n int64
		for s.Field() {
			switch s.Name() {
			case "s":
				str = s.StringOrNull()
			case "n":
				n = s.IntOrNull()
			default:
				s.Skip("s", "n")
			}
		}
		taken := s.End() == nil
		// IntOrNil reads n as IntOrNull does, nil for 0 from null.
		s = jsonscan.NewScanner([]byte(body))
		for s.Field() {
			if s.Name() != "n" {
				s.Skip("n")
				continue
			}
			p := s.IntOrNil()
			if (p == nil) != strings.Contains(body, `"n":null`) || p != nil && *p != n {
				t.Errorf("%s: IntOrNil read %v; IntOrNull %d", body, p, n)
			}
		}
		return str, n, taken && s.End() == nil
	}
	for _, c := range []struct {
		body string
		str  string
		n    int64
		ok   bool
	}{
		{`{"s":null,"n":null}`, "", 0, true},
		{`{"s":"x","n":7}`, "x", 7, true},
		{`{"s":1}`, "", 0, false},
		{`{"n":"7"}`, "", 0, false},
		{`{"n":1.5}`, "", 0, false},
		{`{"s":nul}`, "", 0, false},
	} {
		str, n, ok := read(c.body)
		if ok != c.ok || ok && (str != c.str || n != c.n) {
			t.Errorf("%s: read %q, %d, taken %v; want %q, %d, %v", c.body, str, n, ok, c.str, c.n, c.ok)
		}
	}
}
