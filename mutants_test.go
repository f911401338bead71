package brownout_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMutantCatalogue keeps mutants/ honest: every patch says which real
// bug it mirrors and which test kills it, that test exists where the patch
// says, and the README's table lists the mutant. (Whether the test does
// kill it is scripts/mutants.sh's job, run by make test.)
func TestMutantCatalogue(t *testing.T) {
	patches, err := filepath.Glob("mutants/*.patch")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(patches), 16, "the catalogue has at least 16 real bugs")
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	killedBy := regexp.MustCompile(`(?m)^# killed by: go test (\./\S*/) -run '\^(\w+)\$`)
	for _, p := range patches {
		name := strings.TrimSuffix(filepath.Base(p), ".patch")
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^# mirrors: \S`, string(b), "%s: no '# mirrors:' line", name)
		m := killedBy.FindStringSubmatch(string(b))
		if !assert.NotNil(t, m, "%s: no '# killed by: go test ./pkg/ -run '^TestName$...' line", name) {
			continue
		}
		dir, test := m[1], m[2]
		files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
		require.NoError(t, err)
		found := false
		for _, f := range files {
			src, err := os.ReadFile(f)
			require.NoError(t, err)
			if strings.Contains(string(src), "func "+test+"(") {
				found = true
			}
		}
		assert.True(t, found, "%s: its killing test %s is not in %s", name, test, dir)
		assert.Contains(t, string(readme), "`"+name+"`", "%s: missing from the README's table", name)
	}
}
