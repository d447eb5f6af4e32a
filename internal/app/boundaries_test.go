package app

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Services talk only through libs/events: no service imports another
// service's packages.
func TestServicesDoNotImportEachOther(t *testing.T) {
	root := "../../services"
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		svc := e.Name()
		own := "github.com/apitosms/apitosms/services/" + svc
		err := filepath.WalkDir(filepath.Join(root, svc), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			checked++
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if strings.HasPrefix(p, "github.com/apitosms/apitosms/services/") && p != own && !strings.HasPrefix(p, own+"/") {
					t.Errorf("%s imports %s", path, p)
				}
				if strings.HasPrefix(p, "github.com/apitosms/apitosms/internal") {
					t.Errorf("%s imports the process package %s", path, p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked == 0 {
		t.Fatal("no service sources found")
	}
}

func TestParseTargets(t *testing.T) {
	all, err := parseTargets("all")
	if err != nil || strings.Join(all, ",") != "billing,queue,status,releases,webhooks,stores,ingress" {
		t.Fatalf("all: %v %v", all, err)
	}
	some, err := parseTargets("ingress, queue,ingress")
	if err != nil || strings.Join(some, ",") != "queue,ingress" {
		t.Fatalf("subset: %v %v", some, err)
	}
	if _, err := parseTargets("ingress,bogus"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown target: %v", err)
	}
}
