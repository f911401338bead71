package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"
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
