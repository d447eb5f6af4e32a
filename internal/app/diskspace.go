//go:build unix

package app

import (
	"path/filepath"
	"syscall"
)

// diskSpace returns the bytes available to an unprivileged writer and the
// size of the filesystem holding dir (or its nearest existing parent).
func diskSpace(dir string) (free, size float64, ok bool) {
	if dir == "" {
		dir = "."
	}
	for {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err == nil {
			return float64(st.Bavail) * float64(st.Bsize), float64(st.Blocks) * float64(st.Bsize), true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return 0, 0, false
		}
		dir = parent
	}
}
