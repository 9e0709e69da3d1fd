package cli

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/system"
)

// settings returns the REALGUARDIO_* variables `realguardio serve` reads,
// bound exactly as run binds them.
func settings(t *testing.T) map[string]bool {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	loader := config.NewLoader(fs, func(string) string { return "" })
	var cfg system.Config
	cfg.Bind(loader)
	var s string
	loader.String(&s, "log-level", "info", "")
	loader.String(&s, "log-format", "auto", "")
	out := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { out[config.EnvName(f.Name)] = true })
	return out
}

// TestDeployFilesUseRealSettings parses deploy/compose.yaml and the
// Kubernetes manifests and checks that every REALGUARDIO_* variable they
// set is a setting the binary reads (a misspelt one is silently ignored
// by a running service), that every service runs, and, in Kubernetes,
// that each has a Service, a PodDisruptionBudget, probes on /healthz and
// /readyz and its own Secret.
func TestDeployFilesUseRealSettings(t *testing.T) {
	known := settings(t)
	check := func(where string, env map[string]any) {
		for k := range env {
			if strings.HasPrefix(k, "REALGUARDIO_") && !known[k] {
				t.Errorf("%s sets %s, which no setting of realguardio reads", where, k)
			}
		}
	}

	raw, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command     []string       `yaml:"command"`
			Environment map[string]any `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	served := map[string]bool{}
	for name, svc := range compose.Services {
		check("compose service "+name, svc.Environment)
		if len(svc.Command) == 2 && svc.Command[0] == "serve" {
			served[svc.Command[1]] = true
			if svc.Environment["REALGUARDIO_IAM_INTERNAL_URL"] == nil {
				t.Errorf("compose service %s has no internal IAM URL", name)
			}
			if svc.Environment["REALGUARDIO_"+strings.ToUpper(svc.Command[1])+"_DATABASE_URL"] == nil && svc.Command[1] != "bff" {
				t.Errorf("compose service %s has no database of its own", name)
			}
		}
	}
	for _, want := range system.ServiceNames() {
		if !served[want] {
			t.Errorf("compose.yaml runs no %q", want)
		}
	}
	for _, want := range []string{"postgres", "nats", "openfga", "openfga-migrate"} {
		if _, ok := compose.Services[want]; !ok {
			t.Errorf("compose.yaml has no %s", want)
		}
	}

	raw, err = os.ReadFile("../../deploy/kubernetes/realguardio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type container struct {
		Args    []string                `yaml:"args"`
		Env     []struct{ Name string } `yaml:"env"`
		EnvFrom []struct {
			SecretRef *struct{ Name string } `yaml:"secretRef"`
		} `yaml:"envFrom"`
		ReadinessProbe *struct {
			HTTPGet struct{ Path string } `yaml:"httpGet"`
		} `yaml:"readinessProbe"`
		LivenessProbe *struct {
			HTTPGet struct{ Path string } `yaml:"httpGet"`
		} `yaml:"livenessProbe"`
	}
	type object struct {
		Kind     string
		Metadata struct{ Name string }
		Data     map[string]any
		Spec     struct {
			Replicas *int
			Template struct {
				Spec struct{ Containers []container }
			}
		}
	}
	kinds := map[string]map[string]bool{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	deployed := map[string]bool{}
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("realguardio.yaml: %v", err)
		}
		if kinds[o.Kind] == nil {
			kinds[o.Kind] = map[string]bool{}
		}
		kinds[o.Kind][o.Metadata.Name] = true
		if o.Kind == "ConfigMap" {
			check("ConfigMap "+o.Metadata.Name, o.Data)
		}
		for _, c := range o.Spec.Template.Spec.Containers {
			env := map[string]any{}
			for _, e := range c.Env {
				env[e.Name] = true
			}
			check(o.Kind+" "+o.Metadata.Name, env)
			if len(c.Args) == 2 && c.Args[0] == "serve" {
				deployed[c.Args[1]] = true
				if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
					t.Errorf("%s: probes must be /readyz (readiness) and /healthz (liveness)", o.Metadata.Name)
				}
				own := false
				for _, ef := range c.EnvFrom {
					own = own || (ef.SecretRef != nil && ef.SecretRef.Name == "realguardio-"+c.Args[1])
				}
				if !own {
					t.Errorf("%s: reads no Secret of its own (realguardio-%s)", o.Metadata.Name, c.Args[1])
				}
			}
		}
	}
	var missing []string
	for _, want := range system.ServiceNames() {
		if !deployed[want] {
			missing = append(missing, "Deployment "+want)
		}
		for _, kind := range []string{"Service", "PodDisruptionBudget"} {
			if !kinds[kind][want] {
				missing = append(missing, kind+" "+want)
			}
		}
	}
	for _, kind := range []string{"Ingress", "NetworkPolicy", "ConfigMap"} {
		if len(kinds[kind]) == 0 {
			missing = append(missing, kind)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the Kubernetes manifests lack %s", strings.Join(missing, ", "))
	}
}
