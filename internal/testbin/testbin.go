// Package testbin builds the apitosms binary for tests that run it as a real
// process (SIGKILL durability, the load tool's spawn mode).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Apitosms builds cmd/apitosms once per test process and returns its path.
var Apitosms = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "apitosms-bin")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "apitosms")
	out, err := exec.Command("go", "build", "-o", path, "github.com/apitosms/apitosms/cmd/apitosms").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return path, nil
})
