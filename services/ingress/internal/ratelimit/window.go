// Package ratelimit enforces "at most N requests in any rolling 60-second
// window per account" across every ingress replica. The window of each
// account lives in a NATS key-value bucket and is changed with
// compare-and-set, so concurrent replicas never both take the last slot.
package ratelimit

import (
	"encoding/binary"
	"errors"
	"time"
)

// Window is the rolling window length.
const Window = 60 * time.Second

// exactMax is the largest limit kept as an exact log of request times; above
// it, requests are counted in one-second buckets (a window that may refuse up
// to one second early, never late), so the stored state stays small.
const exactMax = 600

const bucketCount = 61 // seconds s-60 .. s all may hold requests of the last 60 s

// Decision is the outcome of one request.
type Decision struct {
	Allowed   bool
	Limit     int
	Remaining int           // requests still allowed in the window after this one
	Reset     time.Duration // until one more request is allowed; 0 while some remain
}

// state is one account's window; encode/decode keep it in a few hundred bytes.
type state struct {
	// exact mode: unix-millisecond times of accepted requests, oldest first.
	times []int64
	// bucket mode: counts per unix second, bucketStart is the second of counts[0].
	bucketStart int64
	counts      []uint32
}

// take decides whether one more request at now fits under limit, updating
// the state when it does. Refused requests change nothing.
func (s *state) take(now time.Time, limit int) Decision {
	if limit <= exactMax {
		return s.takeExact(now, limit)
	}
	return s.takeBucket(now, limit)
}

func (s *state) takeExact(now time.Time, limit int) Decision {
	s.counts = nil
	ms := now.UnixMilli()
	cut := ms - Window.Milliseconds()
	i := 0
	for i < len(s.times) && s.times[i] <= cut {
		i++
	}
	s.times = s.times[i:]
	d := Decision{Limit: limit}
	if len(s.times) >= limit {
		// The (len-limit)th oldest must leave before one more fits.
		oldest := s.times[len(s.times)-limit]
		d.Reset = time.Duration(oldest-cut) * time.Millisecond
		return d
	}
	s.times = append(s.times, ms)
	d.Allowed = true
	d.Remaining = limit - len(s.times)
	if d.Remaining == 0 {
		d.Reset = time.Duration(s.times[0]-cut) * time.Millisecond
	}
	return d
}

func (s *state) takeBucket(now time.Time, limit int) Decision {
	s.times = nil
	sec := now.Unix()
	first := sec - bucketCount + 1
	s.shift(first)
	total := 0
	for _, c := range s.counts {
		total += int(c)
	}
	d := Decision{Limit: limit}
	if total >= limit {
		d.Reset = s.untilFree(now, total-limit+1)
		return d
	}
	s.counts[bucketCount-1]++
	d.Allowed = true
	d.Remaining = limit - total - 1
	if d.Remaining == 0 {
		d.Reset = s.untilFree(now, 1)
	}
	return d
}

// shift moves the buckets so counts[0] is the second first.
func (s *state) shift(first int64) {
	if len(s.counts) != bucketCount {
		s.counts = make([]uint32, bucketCount)
		s.bucketStart = first
		return
	}
	by := first - s.bucketStart
	switch {
	case by <= 0:
		return
	case by >= bucketCount:
		clear(s.counts)
	default:
		copy(s.counts, s.counts[by:])
		clear(s.counts[bucketCount-int(by):])
	}
	s.bucketStart = first
}

// untilFree is how long until need requests have left the buckets.
func (s *state) untilFree(now time.Time, need int) time.Duration {
	freed := 0
	for i, c := range s.counts {
		freed += int(c)
		if freed >= need {
			// bucket second b leaves the window once the current second is b+bucketCount.
			leave := time.Unix(s.bucketStart+int64(i)+bucketCount, 0)
			return leave.Sub(now)
		}
	}
	return Window
}

const (
	kindExact  = 1
	kindBucket = 2
)

func (s *state) encode() []byte {
	if s.counts != nil {
		b := make([]byte, 0, 1+8+4*len(s.counts))
		b = append(b, kindBucket)
		b = binary.LittleEndian.AppendUint64(b, uint64(s.bucketStart))
		for _, c := range s.counts {
			b = binary.LittleEndian.AppendUint32(b, c)
		}
		return b
	}
	b := make([]byte, 0, 1+8*len(s.times))
	b = append(b, kindExact)
	for _, t := range s.times {
		b = binary.LittleEndian.AppendUint64(b, uint64(t))
	}
	return b
}

var errCorrupt = errors.New("ratelimit: corrupt window")

func decode(b []byte) (state, error) {
	var s state
	if len(b) == 0 {
		return s, nil
	}
	switch b[0] {
	case kindExact:
		if (len(b)-1)%8 != 0 {
			return s, errCorrupt
		}
		for p := 1; p < len(b); p += 8 {
			s.times = append(s.times, int64(binary.LittleEndian.Uint64(b[p:])))
		}
	case kindBucket:
		if len(b) != 1+8+4*bucketCount {
			return s, errCorrupt
		}
		s.bucketStart = int64(binary.LittleEndian.Uint64(b[1:]))
		s.counts = make([]uint32, bucketCount)
		for i := range s.counts {
			s.counts[i] = binary.LittleEndian.Uint32(b[9+4*i:])
		}
	default:
		return s, errCorrupt
	}
	return s, nil
}
