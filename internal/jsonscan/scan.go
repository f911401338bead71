// Package jsonscan reads the few fields a decoder wants from a JSON
// object, with no reflection: the gateway's decoders of the bodies every
// request decodes (the client's chat request, the vendor's answer). Its
// AppendQuoted is the string its appenders write the other way.
package jsonscan

import (
	"errors"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Scanner reads the few fields a decoder wants from one JSON object and
// checks the syntax of the rest as it skips it: a decoder for the bodies
// every request decodes, with no reflection and little code, as a request
// that comes a millisecond after the last finds the caches cold (see the
// gateway's BenchmarkSpacedInMemory).
//
// It is strict where encoding/json is lenient, and declines what it does
// not take whole: a name that differs from a wanted one only in case, a
// wanted field given twice, a name with escapes or other than ASCII,
// invalid UTF-8 in a value read, a null where a value is wanted, an
// integer with a fraction or an exponent, nesting deeper than maxDepth.
// Its caller then decodes the body by reflection, with encoding/json's
// semantics, which decodes the rest or says what is wrong; so a body
// means the same by both, and each decoder on a Scanner has a fuzz test
// that holds it to its reflection decoder.
//
// Its methods stop at the first problem, after which every method does
// nothing and End returns ErrDecline:
//
//	s := jsonscan.NewScanner(body)
//	for s.Field() {
//		switch s.Name() {
//		case "id":
//			id = s.String()
//		default:
//			s.Skip("id")
//		}
//	}
//	err := s.End()
type Scanner struct {
	data  []byte
	pos   int
	depth int
	first bool   // no element of the innermost open container read yet
	name  [2]int // the name Field moved to, as data[name[0]:name[1]]
	err   bool
	// seen holds, for each open object by depth, the wanted names read
	// so far (Once).
	seen [maxDepth + 1]uint64
}

// ErrDecline is a body a Scanner decoder does not take: decode it by reflection.
var ErrDecline = errors.New("jsonscan: body declined by the scanner")

// maxDepth is the deepest nesting a Scanner reads; deeper is declined.
const maxDepth = 32

// NewScanner returns a Scanner at the start of data, which must hold one
// JSON object; the object is open (read with Field).
func NewScanner(data []byte) Scanner {
	s := Scanner{data: data}
	s.ws()
	s.open('{')
	return s
}

// End checks that the object is read whole, with nothing after it.
func (s *Scanner) End() error {
	s.ws()
	if s.err || s.depth != 0 || s.pos != len(s.data) {
		return ErrDecline
	}
	return nil
}

func (s *Scanner) fail() { s.err = true }

// Decline declines the body, for a value its decoder does not take.
func (s *Scanner) Decline() { s.fail() }

func (s *Scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, or 0 at the end.
func (s *Scanner) peek() byte {
	s.ws()
	if s.err || s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

func (s *Scanner) open(c byte) {
	if s.peek() != c || s.depth >= maxDepth {
		s.fail()
		return
	}
	s.pos++
	s.depth++
	s.first = true
	s.seen[s.depth] = 0
}

// next moves to the next element of the innermost container, whose closer
// is end: false (the closer read) when there is none.
func (s *Scanner) next(end byte) bool {
	c := s.peek()
	switch {
	case s.err:
		return false
	case c == end:
		s.pos++
		s.depth--
		s.first = false
		return false
	case s.first:
		s.first = false
		return true
	case c == ',':
		s.pos++
		return true
	}
	s.fail()
	return false
}

// Field moves to the next name of the innermost object and past its
// colon, false at the object's end. Name then returns the name, and the
// value must be read (by a method that reads a value, or Skip).
func (s *Scanner) Field() bool {
	if !s.next('}') {
		return false
	}
	if s.peek() != '"' {
		s.fail()
		return false
	}
	start := s.pos + 1
	if !s.skipString() {
		return false
	}
	raw := s.data[start : s.pos-1]
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			s.fail()
			return false
		}
	}
	s.name = [2]int{start, s.pos - 1}
	if s.peek() != ':' {
		s.fail()
		return false
	}
	s.pos++
	return true
}

// Name is the name Field moved to. It is a fresh string when kept, and
// none when only compared (switch s.Name()), as Go converts bytes to a
// string it only compares without allocating.
func (s *Scanner) Name() string { return string(s.data[s.name[0]:s.name[1]]) }

// Once declines the body if the wanted name numbered bit (0 to 63, each
// wanted name of an object its own) came before in this object, where
// encoding/json would merge the two values into one.
func (s *Scanner) Once(bit uint) {
	if s.seen[s.depth]&(1<<bit) != 0 {
		s.fail()
	}
	s.seen[s.depth] |= 1 << bit
}

// Object opens an object value (read it with Field); false for null.
func (s *Scanner) Object() bool {
	if s.Null() {
		return false
	}
	s.open('{')
	return !s.err
}

// Array opens an array value (read it with Elem); false for null.
func (s *Scanner) Array() bool {
	if s.Null() {
		return false
	}
	s.open('[')
	return !s.err
}

// Elem moves to the next element of the innermost array, false at its end.
func (s *Scanner) Elem() bool { return s.next(']') }

// Null reads a null if one is next, and says whether it did.
func (s *Scanner) Null() bool {
	if s.peek() != 'n' {
		return false
	}
	return s.literal("null")
}

// String reads a string; null or another kind of value is declined.
func (s *Scanner) String() string {
	if s.peek() != '"' {
		s.fail()
		return ""
	}
	start := s.pos
	if !s.skipString() {
		return ""
	}
	raw := s.data[start:s.pos]
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c >= 0x80 {
			b, err := jsontext.AppendUnquote(nil, raw)
			if err != nil {
				s.fail()
				return ""
			}
			return string(b)
		}
	}
	return string(raw[1 : len(raw)-1])
}

// StringOrNull reads a string, or null as "": what a reflection decoder
// leaves in a string field that starts empty, as it leaves a field as it
// was for null.
func (s *Scanner) StringOrNull() string {
	if s.Null() {
		return ""
	}
	return s.String()
}

// Int reads an integer in int64's range; null, a fraction or an exponent
// is declined.
func (s *Scanner) Int() int64 {
	s.ws()
	start := s.pos
	if s.err || !s.skipNumber() {
		s.fail()
		return 0
	}
	n, err := strconv.ParseInt(string(s.data[start:s.pos]), 10, 64)
	if err != nil {
		s.fail()
	}
	return n
}

// IntOrNull reads an integer as Int does, or null as 0: what a
// reflection decoder leaves in an integer field that starts at 0.
func (s *Scanner) IntOrNull() int64 {
	if s.Null() {
		return 0
	}
	return s.Int()
}

// IntOrNil reads an integer as Int does, or null as nil: what a
// reflection decoder leaves in a pointer field.
func (s *Scanner) IntOrNil() *int64 {
	if s.Null() {
		return nil
	}
	n := s.Int()
	return &n
}

// Float reads a number as a float64; null, or a number out of its range,
// is declined.
func (s *Scanner) Float() float64 {
	s.ws()
	start := s.pos
	if s.skipNumber(); s.err {
		return 0
	}
	f, err := strconv.ParseFloat(string(s.data[start:s.pos]), 64)
	if err != nil {
		s.fail()
	}
	return f
}

// Bool reads true or false; null is declined.
func (s *Scanner) Bool() bool {
	switch s.peek() {
	case 't':
		return s.literal("true")
	case 'f':
		s.literal("false")
		return false
	}
	s.fail()
	return false
}

// Raw reads a value of any kind, checking its syntax, and returns a copy
// of its text.
func (s *Scanner) Raw() []byte {
	s.ws()
	start := s.pos
	if s.skipValue(s.depth); s.err {
		return nil
	}
	return append([]byte(nil), s.data[start:s.pos]...)
}

// Skip skips the value of a name that is none of wanted; a name that
// matches one of them but for case is declined (encoding/json would take it for
// that field).
func (s *Scanner) Skip(wanted ...string) {
	for _, w := range wanted {
		if strings.EqualFold(s.Name(), w) {
			s.fail()
			return
		}
	}
	s.skipValue(s.depth)
}

// skipValue skips one value of any kind, checking its syntax.
func (s *Scanner) skipValue(depth int) {
	switch c := s.peek(); {
	case s.err:
	case c == '"':
		s.skipString()
	case c == '{', c == '[':
		if depth >= maxDepth {
			s.fail()
			return
		}
		s.pos++
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		for first := true; ; first = false {
			d := s.peek()
			if d == end {
				s.pos++
				return
			}
			if !first {
				if d != ',' {
					s.fail()
					return
				}
				s.pos++
			}
			if c == '{' {
				if s.peek() != '"' || !s.skipString() || s.peek() != ':' {
					s.fail()
					return
				}
				s.pos++
			}
			s.skipValue(depth + 1)
			if s.err {
				return
			}
		}
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	default:
		s.skipNumber() // a fraction or an exponent is fine here
	}
}

func (s *Scanner) literal(lit string) bool {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		s.fail()
		return false
	}
	s.pos += len(lit)
	return true
}

// skipString skips the string at s.pos (its opening quote), checking its
// escapes and that it has no control character; its UTF-8 is checked
// only where it is read (String), as encoding/json takes invalid UTF-8.
func (s *Scanner) skipString() bool {
	i := s.pos + 1
	for i < len(s.data) {
		switch c := s.data[i]; {
		case c == '"':
			s.pos = i + 1
			return true
		case c < 0x20:
			s.fail()
			return false
		case c == '\\':
			if i+1 >= len(s.data) {
				s.fail()
				return false
			}
			switch s.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s.data) {
					s.fail()
					return false
				}
				for _, h := range s.data[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						s.fail()
						return false
					}
				}
				i += 6
			default:
				s.fail()
				return false
			}
		default:
			i++
		}
	}
	s.fail()
	return false
}

// skipNumber skips a JSON number at s.pos and says whether it was an
// integer (no fraction or exponent); s.err is set for a malformed one.
func (s *Scanner) skipNumber() bool {
	d, i := s.data, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i, _ = digits(d, i)
	default:
		s.fail()
		return false
	}
	integer, ok := true, true
	if i < len(d) && d[i] == '.' {
		integer = false
		i, ok = digits(d, i+1)
	}
	if ok && i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		integer = false
		if i++; i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		i, ok = digits(d, i)
	}
	if !ok {
		s.fail()
		return false
	}
	s.pos = i
	return integer
}

// digits returns the end of the run of digits at d[i:], and whether it
// has one at least.
func digits(d []byte, i int) (int, bool) {
	j := i
	for j < len(d) && d[j] >= '0' && d[j] <= '9' {
		j++
	}
	return j, j > i
}

// AppendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as json.Marshal makes it; the error that reports it is dropped.
func AppendQuoted(b []byte, s string) []byte {
	b, _ = jsontext.AppendQuote(b, s)
	return b
}
