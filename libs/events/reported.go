package events

import (
	"bytes"
	"fmt"
)

// A reported-stream message carries ReportedBatch events in one of two
// forms: one event as a JSON object (what one status request announces,
// and every message before combined ones existed), or several as a JSON
// array of such objects (the events of status requests that committed
// together, published as one stream message: one write, one fsync).
// Readers must take both; a stream may hold either across an upgrade.

// ReportedMessage returns the message carrying the events whose JSON
// encodings are payloads, in order: the one encoding itself, or their JSON
// array. Its length is ReportedMessageLen(payloads).
func ReportedMessage(payloads [][]byte) []byte {
	if len(payloads) == 1 {
		return payloads[0]
	}
	b := make([]byte, 0, ReportedMessageLen(payloads))
	b = append(b, '[')
	for i, p := range payloads {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p...)
	}
	return append(b, ']')
}

// ReportedMessageLen is the length of ReportedMessage(payloads).
func ReportedMessageLen(payloads [][]byte) int {
	n := 0
	for _, p := range payloads {
		n += len(p)
	}
	if len(payloads) == 1 {
		return n
	}
	return n + len(payloads) + 1 // brackets and commas
}

// DecodeReported appends the events of a reported-stream message, in
// order, to dst: an object is one event, an array several.
func DecodeReported(dst []ReportedBatch, data []byte) ([]ReportedBatch, error) {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		var evs []ReportedBatch
		if err := Unmarshal(data, &evs); err != nil {
			return dst, fmt.Errorf("reported events: %w", err)
		}
		return append(dst, evs...), nil
	}
	var ev ReportedBatch
	if err := Unmarshal(data, &ev); err != nil {
		return dst, fmt.Errorf("reported event: %w", err)
	}
	return append(dst, ev), nil
}
