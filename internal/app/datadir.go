package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The data dir holds the embedded NATS server's store and the SQLite files.
// Two processes must never run an embedded server on one store, so before
// anything opens the dir a process takes a lock on DataDir/apitosms.lock:
// exclusive when it runs the embedded server (it owns the dir), shared when
// it only uses SQLite files there (SQLite arbitrates between processes
// itself, so replicas may share them; a server owning the dir may not start
// beside them). The lock is an flock: the kernel releases it when the
// process exits, however it exits, so a crash never leaves a stale lock.
const lockFileName = "apitosms.lock"

// dataDirLock is a held lock on a data dir.
type dataDirLock struct {
	f         *os.File
	exclusive bool
}

// lockDataDir creates dir if needed, proves it writable and locks it. It
// fails at once (never waits) naming the path and the cause: an unwritable
// dir, or another process holding the lock (with its pid when known).
func lockDataDir(dir string, exclusive bool) (*dataDirLock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("data dir %s is not usable: %w", abs, err)
	}
	// Creating a file proves the dir writable (permissions, a read-only
	// mount, a full disk) before the embedded server or SQLite find out in
	// their own, slower and vaguer, ways.
	probe, err := os.CreateTemp(abs, ".write-probe-*")
	if err != nil {
		return nil, fmt.Errorf("data dir %s is not writable: %w", abs, err)
	}
	_, werr := probe.Write([]byte("ok"))
	cerr := probe.Close()
	_ = os.Remove(probe.Name())
	if err := errors.Join(werr, cerr); err != nil {
		return nil, fmt.Errorf("data dir %s is not writable: %w", abs, err)
	}
	path := filepath.Join(abs, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640) //nolint:gosec // G302: a lock file holding only the holder's pid; group-readable for operators
	if err != nil {
		return nil, fmt.Errorf("data dir %s: lock file: %w", abs, err)
	}
	if err := flock(f, exclusive); err != nil {
		holder := readHolder(f)
		_ = f.Close() // only locked, never written
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("data dir %s is in use by another apitosms process%s (lock %s); stop it, or give this one its own APITOSMS_DATA_DIR", abs, holder, path)
		}
		return nil, fmt.Errorf("data dir %s: lock %s: %w", abs, path, err)
	}
	// The owner's pid, for the message of a process refused later. A
	// shared holder clears it: no owner runs, so any pid there is stale
	// (an owner that was killed).
	if err := f.Truncate(0); err == nil && exclusive {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataDirLock{f: f, exclusive: exclusive}, nil
}

// release gives the lock up (an exclusive owner first clears its pid).
func (l *dataDirLock) release() {
	if l == nil {
		return
	}
	if l.exclusive {
		_ = l.f.Truncate(0)
	}
	_ = l.f.Close()
}

// readHolder returns " (pid N)" from the lock file, or "" if it names none.
func readHolder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return ""
	}
	return " (pid " + strconv.Itoa(pid) + ")"
}
