package sweep

import (
	"testing"
	"time"
)

// A refresh waits its interval, or 50 times its own duration when that is
// longer, so the counts take at most 2% of the time.
func TestBacklogWait(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ interval, took, want time.Duration }{
		{15 * time.Second, 10 * time.Millisecond, 15 * time.Second},
		{15 * time.Second, 300 * time.Millisecond, 15 * time.Second},
		{15 * time.Second, time.Second, 50 * time.Second},
		{15 * time.Second, 5 * time.Second, 250 * time.Second},
		{100 * time.Millisecond, 0, 100 * time.Millisecond},
	} {
		if got := backlogWait(c.interval, c.took); got != c.want {
			t.Errorf("backlogWait(%v, %v) = %v, want %v", c.interval, c.took, got, c.want)
		}
	}
}
