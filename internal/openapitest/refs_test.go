package openapitest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPIRefsResolve: every local $ref of every api/*.yaml names a
// component the file defines, so a renamed or forgotten schema, parameter
// or response is found here rather than by a client's code generator.
func TestOpenAPIRefsResolve(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "api", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no api/*.yaml found")
	}
	refs := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, x := range v {
					if ref, ok := x.(string); ok && k == "$ref" && strings.HasPrefix(ref, "#/") {
						refs++
						if !resolves(doc, ref) {
							t.Errorf("%s: $ref %q names nothing the file defines", filepath.Base(f), ref)
						}
						continue
					}
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(doc)
	}
	if refs < 100 {
		t.Errorf("found only %d $refs in api/*.yaml; is the walk broken?", refs)
	}
}

// resolves reports whether the JSON pointer ref ("#/components/schemas/ID")
// names a node of doc.
func resolves(doc map[string]any, ref string) bool {
	var node any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := node.(map[string]any)
		if !ok {
			return false
		}
		if node, ok = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]; !ok {
			return false
		}
	}
	return true
}
