//go:build !unix

package app

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// flock is a no-op where flock(2) does not exist: the data dir is not
// locked there (release builds are Linux and macOS only).
func flock(*os.File, bool) error { return nil }
