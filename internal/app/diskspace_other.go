//go:build !unix

package app

// diskSpace is not reported on this platform.
func diskSpace(string) (free, size float64, ok bool) { return 0, 0, false }
