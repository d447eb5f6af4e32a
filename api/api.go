// Package api holds the OpenAPI 3.1 description of the HTTP API
// (openapi.yaml), embedded so the server can serve the document it was built
// with (GET /openapi.yaml) and tests can check the server against it.
package api

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
)

//go:embed openapi.yaml
var spec []byte

// OpenAPI returns the OpenAPI document (YAML). The caller must not modify it.
func OpenAPI() []byte { return spec }

// ETag is the quoted hex SHA-256 of the document.
var ETag = func() string {
	sum := sha256.Sum256(spec)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}()
