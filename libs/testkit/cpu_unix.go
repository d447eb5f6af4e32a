//go:build unix

package testkit

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time (user and system) this process used so far.
// A benchmark that reports it per unit of work counts the work without the
// time spent waiting for a core, which a shared machine makes noisy (on
// PostgreSQL it counts the client's part only).
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
