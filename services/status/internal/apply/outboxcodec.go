package apply

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/apitosms/apitosms/libs/events"
)

// The outbox stores a ReportedBatch in a compact binary form rather than as
// its JSON: about 3 bytes per item instead of about 30, so a 200-report
// request adds a few hundred bytes to its transaction (one page, no
// overflow pages to write and free) and the report path keeps its speed.
// Layout: version byte, account (varint), reported-at Unix µs (varint),
// device (length-prefixed), item count (uvarint), then per item the
// position's difference from the previous one (varint) and its status
// (one byte).

const outboxV1 = 1

func encodeOutbox(ev events.ReportedBatch) []byte {
	b := make([]byte, 0, 16+len(ev.Device)+4*len(ev.Items))
	b = append(b, outboxV1)
	b = binary.AppendVarint(b, ev.AccountID)
	b = binary.AppendVarint(b, ev.ReportedAt.UnixMicro())
	b = binary.AppendUvarint(b, uint64(len(ev.Device)))
	b = append(b, ev.Device...)
	b = binary.AppendUvarint(b, uint64(len(ev.Items)))
	var prev int64
	for _, it := range ev.Items {
		b = binary.AppendVarint(b, it.Pos-prev)
		b = append(b, byte(it.Status))
		prev = it.Pos
	}
	return b
}

var errOutboxCorrupt = errors.New("outbox event: corrupt")

func decodeOutbox(b []byte) (events.ReportedBatch, error) {
	var ev events.ReportedBatch
	if len(b) == 0 || b[0] != outboxV1 {
		return ev, errOutboxCorrupt
	}
	b = b[1:]
	varint := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	uvarint := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	ev.AccountID = varint()
	ev.ReportedAt = time.UnixMicro(varint()).UTC()
	dl := uvarint()
	if b == nil || uint64(len(b)) < dl {
		return ev, errOutboxCorrupt
	}
	ev.Device, b = string(b[:dl]), b[dl:]
	n := uvarint()
	if b == nil || n > uint64(len(b)) {
		return ev, errOutboxCorrupt
	}
	ev.Items = make([]events.Reported, 0, n)
	var pos int64
	for range n {
		pos += varint()
		if len(b) < 1 {
			return ev, errOutboxCorrupt
		}
		ev.Items = append(ev.Items, events.Reported{Pos: pos, Status: int(b[0])})
		b = b[1:]
	}
	if len(b) != 0 {
		return ev, errOutboxCorrupt
	}
	return ev, nil
}
