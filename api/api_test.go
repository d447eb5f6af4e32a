package api_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/apitosms/apitosms/api"
)

// The document is valid OpenAPI 3.1: it loads, every $ref resolves, and
// every example validates against its schema.
func TestSpecIsValid(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
}

// docs/api.md is the readable form of the document: every operation of the
// document has a "### `METHOD /path`" heading there and every such heading
// is an operation of the document; every error code the document lists is
// explained there.
func TestDocsMatchSpec(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	inSpec := map[string]bool{}
	codes := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			inSpec[method+" "+path] = true
			for _, r := range op.Responses.Map() {
				for _, mt := range r.Value.Content {
					for _, ex := range mt.Examples {
						if m, ok := ex.Value.Value.(map[string]any); ok {
							if c, ok := m["code"].(string); ok {
								codes[c] = true
							}
						}
					}
				}
			}
		}
	}
	heading := regexp.MustCompile("`(GET|HEAD|POST|PUT|PATCH|DELETE) (/[^`]*)`")
	inDocs := map[string]bool{}
	for _, line := range strings.Split(string(md), "\n") {
		if !strings.HasPrefix(line, "### ") {
			continue
		}
		for _, m := range heading.FindAllStringSubmatch(line, -1) {
			inDocs[m[1]+" "+m[2]] = true
		}
	}
	if len(inSpec) < 20 {
		t.Fatalf("only %d operations in the document", len(inSpec))
	}
	for op := range inSpec {
		if !inDocs[op] {
			t.Errorf("%s is in openapi.yaml but has no heading in docs/api.md", op)
		}
	}
	for op := range inDocs {
		if !inSpec[op] {
			t.Errorf("docs/api.md documents %s, which openapi.yaml does not have", op)
		}
	}
	table := regexp.MustCompile("(?m)^\\| \\d{3} \\| `([a-z_]+)` \\|")
	explained := map[string]bool{}
	for _, m := range table.FindAllStringSubmatch(string(md), -1) {
		explained[m[1]] = true
	}
	for c := range codes {
		if !explained[c] {
			t.Errorf("error code %s is in openapi.yaml but not in the error code table of docs/api.md", c)
		}
	}
}
