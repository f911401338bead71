package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"
)

//go:embed library/*.yaml
var library embed.FS

// Library lists the shipped scenarios by name.
func Library() []string {
	entries, _ := fs.ReadDir(library, "library")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(names)
	return names
}

// LoadLibrary loads a shipped scenario by name.
func LoadLibrary(name string) (*Scenario, error) {
	data, err := library.ReadFile("library/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("scenarios: no library scenario %q (have %s)", name, strings.Join(Library(), ", "))
	}
	return Parse("scenarios/library/"+name+".yaml", data)
}

// Entry describes a library scenario for a listing: its one-line summary
// (the first sentence of its header comment), its length and what it
// checks.
type Entry struct {
	Name     string
	Summary  string
	Duration time.Duration
	Checks   []string // the names of its expectations
}

// Describe loads a library scenario and describes it.
func Describe(name string) (Entry, error) {
	data, err := library.ReadFile("library/" + name + ".yaml")
	if err != nil {
		return Entry{}, fmt.Errorf("scenarios: no library scenario %q (have %s)", name, strings.Join(Library(), ", "))
	}
	sc, err := Parse("scenarios/library/"+name+".yaml", data)
	if err != nil {
		return Entry{}, err
	}
	var comment []string
	for line := range strings.Lines(string(data)) {
		text, ok := strings.CutPrefix(strings.TrimSpace(line), "#")
		if !ok {
			break
		}
		comment = append(comment, strings.TrimSpace(text))
	}
	summary := strings.TrimPrefix(strings.Join(comment, " "), name+": ")
	if i := strings.Index(summary, ". "); i >= 0 {
		summary = summary[:i+1]
	}
	e := Entry{Name: name, Summary: summary, Duration: sc.Duration}
	// The checks an empty report gets are the expectations' names.
	zero := &Report{Cost: CostSummary{Total: "0", PerRequest: "0"},
		Reconciliation: Reconciliation{Invoiced: "0", Metered: "0", Reported: "0", Estimated: "0", Unmetered: "0"}}
	for _, c := range sc.Expect.check(zero) {
		e.Checks = append(e.Checks, c.Name)
	}
	return e, nil
}
