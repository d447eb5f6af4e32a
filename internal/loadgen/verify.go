package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// verify drains what the window left (not measured), then checks that every
// accepted message was pulled exactly once and reported once (those
// scheduled for later: never), that the server counted every report as
// updated, and that every account's queue has nothing due. It sets res.Verified and res.VerifyError.
func (r *run) verify(ctx context.Context, res *Result) {
	ok := false
	res.Verified = &ok
	fail := func(format string, args ...any) { res.VerifyError = fmt.Sprintf(format, args...) }

	if len(r.phones) > 0 {
		r.cfg.PollEvery = 0 // the tail is not measured: no pacing
		tail, cancel := context.WithTimeout(ctx, 2*time.Minute)
		r.runPhones(tail, nil, true)
		cancel()
	}
	accepted := map[string]bool{}
	waiting := 0
	for _, m := range r.merchants {
		waiting += len(m.waiting)
		for _, h := range m.hashes {
			if accepted[h] {
				fail("hash %s accepted twice", h)
				return
			}
			accepted[h] = true
		}
	}
	if int64(len(accepted)) != r.accepted() {
		fail("%d hashes seen for %d accepted messages", len(accepted), r.accepted())
		return
	}
	if len(r.phones) == 0 {
		ok = true
		return
	}
	pulled := map[string]bool{}
	var reported, updated, reportErrors int64
	for _, w := range r.phones {
		for _, h := range w.hashes {
			if pulled[h] {
				fail("message %s pulled twice", h)
				return
			}
			if !accepted[h] {
				fail("pulled message %s was never accepted", h)
				return
			}
			if r.isWaiting(h) {
				fail("message %s scheduled for later was handed out", h)
				return
			}
			pulled[h] = true
		}
		s := w.stats()
		reported += s.Reported
		updated += s.Updated
		reportErrors += s.ReportErrors
		if w.fatal != nil {
			fail("phone stopped: %v", w.fatal)
			return
		}
	}
	switch {
	case len(pulled) != len(accepted)-waiting:
		fail("%d of %d accepted messages pulled (%d scheduled for later)", len(pulled), len(accepted), waiting)
	case reported != int64(len(pulled)):
		fail("%d reported for %d pulled", reported, len(pulled))
	case updated != reported || reportErrors != 0:
		fail("server updated %d of %d reports (%d entry errors)", updated, reported, reportErrors)
	default:
		for _, tok := range r.tokens {
			body, code, err := r.get(ctx, r.cfg.URL+"/api/"+tok+"/get_messages?limit=200")
			if err != nil || code != http.StatusOK || !bytes.Equal(bytes.TrimSpace(body), []byte("[]")) {
				fail("final get_messages: %d %s %v", code, bytes.TrimSpace(body), err)
				return
			}
		}
		ok = true
	}
}

// isWaiting reports whether hash was accepted scheduled for later.
func (r *run) isWaiting(hash string) bool {
	for _, m := range r.merchants {
		if m.waiting[hash] {
			return true
		}
	}
	return false
}

func (r *run) get(ctx context.Context, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}
