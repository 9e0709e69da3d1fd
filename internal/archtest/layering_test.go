package archtest

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/realguardio/realguardio/internal/"

// services are the processes of ARCHITECTURE.md. A service's packages may
// import the shared layers below, never another service's packages: what
// two services share is a contract (internal/contract), an event or a
// platform package.
var services = []string{"iam", "customer", "dealer", "monitoring", "securitysystem", "authzsync", "bff"}

// orgServices may use the organization kit, the shared implementation of
// their common model (employees, locations, teams).
var orgServices = []string{"customer", "dealer", "monitoring"}

// shared are the layers every service may import; they import no service,
// no composition root and nothing above themselves.
var shared = []string{"platform", "policy", "contract"}

// roots wire or drive the whole system and may import anything.
var roots = []string{"cli", "system", "bench", "demo", "systemtest", "browsertest", "faulttest", "openapitest", "apiclient", "archtest"}

// pkg is one production package: its path below internal/ and its
// non-test imports below internal/.
type pkg struct {
	path    string
	imports []string
	// all is every non-test import, standard library and third party
	// included, as written.
	all []string
}

// isTestSupport reports whether p is a package that exists only for tests
// (sstest, orgkittest, eventstest, ...): harnesses that start real peers
// and so may import them. Test files are not production code either.
func isTestSupport(p string) bool {
	return strings.HasSuffix(filepath.Base(p), "test")
}

func top(p string) string { return strings.SplitN(p, "/", 2)[0] }

// load reads every package under internal/.
func load(t *testing.T) []pkg {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var out []pkg
	err = filepath.WalkDir(root, func(dir string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if n := d.Name(); n == "testdata" || strings.HasPrefix(n, ".") {
			return filepath.SkipDir
		}
		bp, err := build.Default.ImportDir(dir, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, dir)
		p := pkg{path: filepath.ToSlash(rel), all: bp.Imports}
		for _, imp := range bp.Imports {
			if strings.HasPrefix(imp, module) {
				p.imports = append(p.imports, strings.TrimPrefix(imp, module))
			}
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 50 {
		t.Fatalf("found %d packages under %s; the walk is broken", len(out), root)
	}
	return out
}

// TestLayering fails when a package crosses a boundary: a service
// importing another service, a shared layer importing a service or a root,
// the organization kit importing a service, or anything but the roots
// importing a root.
func TestLayering(t *testing.T) {
	if _, err := os.Stat("../../go.mod"); err != nil {
		t.Fatalf("run from internal/archtest: %v", err)
	}
	known := map[string]bool{}
	for _, k := range slices.Concat(services, shared, roots, []string{"orgkit"}) {
		known[k] = true
	}
	for _, p := range load(t) {
		own := top(p.path)
		if !known[own] {
			t.Errorf("%s: internal/%s is in no layer of this test; add it to services, shared or roots", p.path, own)
			continue
		}
		if isTestSupport(p.path) || slices.Contains(roots, own) {
			continue
		}
		for _, imp := range p.imports {
			to := top(imp)
			if to == own {
				continue
			}
			var why string
			switch {
			case slices.Contains(roots, to):
				why = "only the composition roots import " + to
			case slices.Contains(shared, own) && !slices.Contains(shared, to):
				why = "a shared layer imports no service"
			case to == "orgkit" && !slices.Contains(orgServices, own):
				why = "only the organization services use the organization kit"
			case own == "orgkit" && slices.Contains(services, to):
				why = "the organization kit imports no service"
			case slices.Contains(services, own) && slices.Contains(services, to):
				why = "a service never imports another service; share a contract (internal/contract) instead"
			}
			if why != "" {
				t.Errorf("%s imports %s: %s", p.path, imp, why)
			}
		}
	}
}

// TestPolicyIsPure keeps the rule free of transport and storage (its one
// platform import is the error type): the same function decides for every
// strategy, in tests and in production.
func TestPolicyIsPure(t *testing.T) {
	for _, p := range load(t) {
		if top(p.path) != "policy" || isTestSupport(p.path) {
			continue
		}
		bp, err := build.Default.ImportDir(filepath.Join("..", p.path), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range bp.Imports {
			if imp == "net/http" || imp == "database/sql" || (strings.HasPrefix(imp, module+"platform") && imp != module+"platform/apperr") {
				t.Errorf("%s imports %s: the rule depends on nothing but its vocabulary", p.path, imp)
			}
		}
	}
}

// transport are the imports a use case must not link, directly or through
// the packages it imports: HTTP, metrics and SQL drivers belong to the
// adapters around it, so that the rules and use cases can be read, tested
// and changed without them. The walk follows this module's packages;
// a third-party import is checked itself, not what it imports.
var transport = []string{"net/http", "database/sql", "github.com/prometheus/", "github.com/jackc/pgx", "modernc.org/sqlite"}

// useCaseExceptions are use-case packages that still link transport, each
// with the reason; a package here that no longer does fails the test, so
// the list only shrinks.
var useCaseExceptions = map[string]string{}

// TestUseCasesLinkNoTransport: a service's use cases (its app and domain
// packages) link neither net/http, nor metrics, nor a SQL driver, through
// any package they import; Caller and the role vocabulary come from
// platform/principal for that reason.
func TestUseCasesLinkNoTransport(t *testing.T) {
	pkgs := map[string]pkg{}
	for _, p := range load(t) {
		pkgs[p.path] = p
	}
	// via returns the chain of imports from p to a transport package, or
	// nil when there is none.
	var via func(path string, seen map[string]bool) []string
	via = func(path string, seen map[string]bool) []string {
		if seen[path] {
			return nil
		}
		seen[path] = true
		p := pkgs[path]
		for _, imp := range p.all {
			for _, bad := range transport {
				if imp == bad || (strings.HasSuffix(bad, "/") && strings.HasPrefix(imp, bad)) || (!strings.HasSuffix(bad, "/") && strings.HasPrefix(imp, bad+"/")) {
					return []string{path, imp}
				}
			}
		}
		for _, imp := range p.imports {
			if chain := via(imp, seen); chain != nil {
				return append([]string{path}, chain...)
			}
		}
		return nil
	}
	checked := 0
	for path := range pkgs {
		if !slices.Contains(services, top(path)) || isTestSupport(path) {
			continue
		}
		if base := filepath.Base(path); base != "app" && base != "domain" {
			continue
		}
		checked++
		chain := via(path, map[string]bool{})
		why, excepted := useCaseExceptions[path]
		switch {
		case chain != nil && !excepted:
			t.Errorf("%s links transport: %s; use cases take principal.Caller and ports they own", path, strings.Join(chain, " -> "))
		case chain != nil:
			t.Logf("%s still links transport (%s): %s", path, strings.Join(chain, " -> "), why)
		case excepted:
			t.Errorf("%s no longer links transport: remove it from useCaseExceptions", path)
		}
	}
	if checked == 0 {
		t.Fatal("no use-case package found; the walk is broken")
	}
	for path := range useCaseExceptions {
		if _, ok := pkgs[path]; !ok {
			t.Errorf("useCaseExceptions lists %s, which does not exist", path)
		}
	}
}
