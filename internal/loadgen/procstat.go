package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// clockTicks is USER_HZ, the unit of CPU times in /proc/<pid>/stat. It is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// ProcSample is a reading of a process's resource use from /proc.
type ProcSample struct {
	CPUSeconds float64 // user + system time so far
	RSS        int64   // resident set size now, bytes (VmRSS)
	PeakRSS    int64   // high-water mark of RSS, bytes (VmHWM)
}

// ReadProc reads pid's CPU time from /proc/<pid>/stat and its resident set
// (current and peak) from /proc/<pid>/status.
func ReadProc(pid int) (ProcSample, error) {
	var s ProcSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after its closing parenthesis.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := bytes.Fields(stat[end+1:])
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	if len(fields) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad cpu times", pid)
	}
	s.CPUSeconds = float64(utime+stime) / clockTicks

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		switch {
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			s.PeakRSS = kib(line)
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			s.RSS = kib(line)
		}
	}
	return s, nil
}

// kib parses "VmHWM:	  12345 kB" into bytes.
func kib(line []byte) int64 {
	f := bytes.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return n << 10
}

// cpuByName returns the CPU seconds of every process whose command name
// (/proc/<pid>/comm) is one of names, by pid.
func cpuByName(names []string) map[int]float64 {
	out := map[int]float64{}
	if len(names) == 0 {
		return out
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		name := string(bytes.TrimSpace(comm))
		for _, n := range names {
			if name == n {
				if s, err := ReadProc(pid); err == nil {
					out[pid] = s.CPUSeconds
				}
				break
			}
		}
	}
	return out
}

// cpuDelta sums, over the processes alive at the end, the CPU time used
// since the first reading (all of it for processes started since).
func cpuDelta(before, after map[int]float64) float64 {
	var d float64
	for pid, a := range after {
		d += a - before[pid]
	}
	return d
}

// pressureTotal reads the "some" stall total (microseconds) of a Linux PSI
// file such as /proc/pressure/cpu: time during which at least one task
// waited for that resource. ok is false where PSI is unavailable.
func pressureTotal(resource string) (us int64, ok bool) {
	b, err := os.ReadFile("/proc/pressure/" + resource)
	if err != nil {
		return 0, false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("some ")) {
			continue
		}
		for _, f := range bytes.Fields(line) {
			if v, found := bytes.CutPrefix(f, []byte("total=")); found {
				n, err := strconv.ParseInt(string(v), 10, 64)
				return n, err == nil
			}
		}
	}
	return 0, false
}
