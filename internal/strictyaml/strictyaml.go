// Package strictyaml decodes brownout's YAML files strictly: unknown fields,
// duplicate keys and wrong types are errors, and every error, including the
// ones a config's own validation finds after decoding, names the file, the
// line and the field.
//
// A config type reports bad values through Validate, returning FieldErrors
// whose Path is a YAML path ("$.providers.gemini.faults[0].probability");
// Decode turns each path into a line and column of the source.
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Validator is implemented by config types that check their values after
// decoding. Validate returns nil, a *FieldError, or several joined with
// errors.Join.
type Validator interface {
	Validate() error
}

// FieldError is a bad value at a YAML path.
type FieldError struct {
	Path string // "$.a.b[0].c"
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Errorf returns a *FieldError at path.
func Errorf(path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Error is a decode or validation error at a place in a file.
type Error struct {
	File   string
	Line   int // 0 when the place is unknown
	Column int
	Field  string // the YAML path, when known
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString("field " + strings.TrimPrefix(e.Field, "$.") + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// DecodeFile reads the file at path and hands its bytes to parse (a
// package's Parse function, which calls Decode), with path as the name its
// errors give. A file that cannot be read is that error, which names it.
func DecodeFile[T any](path string, parse func(name string, data []byte) (T, error)) (T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(path, data)
}

// Decode decodes data, read from file, into v strictly, then validates v if
// it is a Validator. The error is an *Error, or several joined.
func Decode(file string, data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return &Error{File: file, Msg: "file is empty"}
	}
	// Duplicate keys are errors by default.
	if err := yaml.UnmarshalWithOptions(data, v, yaml.Strict()); err != nil {
		return decodeError(file, data, err)
	}
	val, ok := v.(Validator)
	if !ok {
		return nil
	}
	err := val.Validate()
	if err == nil {
		return nil
	}
	return Locate(file, data, err)
}

// Locate turns the FieldErrors in err into *Errors that name the line and
// column of their path in data; other errors are kept, prefixed by file.
func Locate(file string, data []byte, err error) error {
	f, perr := parser.ParseBytes(data, 0)
	var out []error
	for _, e := range Flatten(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			out = append(out, &Error{File: file, Msg: e.Error()})
			continue
		}
		le := &Error{File: file, Field: fe.Path, Msg: fe.Msg}
		if perr == nil {
			le.Line, le.Column = position(f, fe.Path)
		}
		out = append(out, le)
	}
	return errors.Join(out...)
}

// position finds the line of path in f, or of its nearest existing parent
// (a missing field is reported where its parent is).
func position(f *ast.File, path string) (int, int) {
	for p := path; p != "" && p != "$"; p = parent(p) {
		yp, err := yaml.PathString(p)
		if err != nil {
			continue
		}
		node, err := yp.FilterFile(f)
		if err != nil || node == nil {
			continue
		}
		tok := node.GetToken()
		if tok == nil {
			continue
		}
		return tok.Position.Line, tok.Position.Column
	}
	return 0, 0
}

func parent(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i > 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i > 0 {
		return p[:i]
	}
	return ""
}

// Flatten returns the errors joined in err (errors.Join), recursively; err
// itself when it joins nothing.
func Flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func decodeError(file string, data []byte, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		e := &Error{File: file, Msg: ye.GetMessage()}
		if tok := ye.GetToken(); tok != nil {
			e.Line, e.Column = tok.Position.Line, tok.Position.Column
		}
		return e
	}
	// Conversions the decoder delegates (time.ParseDuration, for one) lose
	// the position; find the offending value, which they quote, in the source.
	e := &Error{File: file, Msg: err.Error()}
	if q := quoted(e.Msg); q != "" {
		if f, perr := parser.ParseBytes(data, 0); perr == nil {
			e.Line, e.Column, e.Field = findScalar(f, q)
		}
	}
	return e
}

func quoted(msg string) string {
	i := strings.IndexByte(msg, '"')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(msg[i+1:], '"')
	if j < 0 {
		return ""
	}
	return msg[i+1 : i+1+j]
}

// findScalar returns the position and path of the first scalar whose value
// is v or, failing that, contains it.
func findScalar(f *ast.File, v string) (line, col int, path string) {
	for _, match := range []func(string) bool{
		func(s string) bool { return s == v },
		func(s string) bool { return strings.Contains(s, v) },
	} {
		for _, doc := range f.Docs {
			ast.Walk(visitFunc(func(n ast.Node) bool {
				if line != 0 {
					return false
				}
				if sn, ok := n.(ast.ScalarNode); ok && match(fmt.Sprint(sn.GetValue())) {
					if tok := n.GetToken(); tok != nil {
						line, col, path = tok.Position.Line, tok.Position.Column, n.GetPath()
					}
				}
				return true
			}), doc)
		}
		if line != 0 {
			break
		}
	}
	return line, col, path
}

type visitFunc func(ast.Node) bool

func (f visitFunc) Visit(n ast.Node) ast.Visitor {
	if f(n) {
		return f
	}
	return nil
}

// Key quotes a map key for use in a YAML path.
func Key(k string) string {
	if k != "" && !strings.ContainsAny(k, ".[]'\" ") {
		return k
	}
	return "'" + strings.ReplaceAll(k, "'", "\\'") + "'"
}
