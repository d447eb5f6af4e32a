package groupcommit_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/apitosms/apitosms/libs/groupcommit"
)

func TestGathererGroupsWhatWaitsInOrder(t *testing.T) { synctest.Test(t, testGathererGroups) }

func testGathererGroups(t *testing.T) {
	var mu sync.Mutex
	var groups [][]int
	// At most 3 items a group, by a take that counts.
	g := groupcommit.NewGatherer(func(waiting []int) int { return 3 }, func(group []int) {
		mu.Lock()
		groups = append(groups, group)
		mu.Unlock()
		time.Sleep(time.Millisecond) // busy: what arrives meanwhile waits
	})
	g.Start(1)
	g.Add(0) // finds the loop free: handled alone, at once
	synctest.Wait()
	for i := 1; i <= 7; i++ {
		if !g.Add(i) {
			t.Fatalf("Add(%d) refused before Close", i)
		}
	}
	g.Close()
	want := [][]int{{0}, {1, 2, 3}, {4, 5, 6}, {7}}
	if !slices.EqualFunc(groups, want, slices.Equal) {
		t.Fatalf("groups %v, want %v", groups, want)
	}
	if g.Add(8) {
		t.Fatal("Add after Close took the item")
	}
}

func TestGathererTakesAtLeastOneAndAddsTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var groups [][]string
		block := make(chan struct{})
		g := groupcommit.NewGatherer(func([]string) int { return 0 }, func(group []string) {
			groups = append(groups, group)
			<-block
		})
		g.Start(1)
		g.Add("first")
		synctest.Wait() // the loop holds "first"
		g.Add("a", "b") // handed over together
		g.Add("c")
		close(block)
		g.Close()
		// take's 0 counts as one: the loop still makes progress.
		want := [][]string{{"first"}, {"a"}, {"b"}, {"c"}}
		if !slices.EqualFunc(groups, want, slices.Equal) {
			t.Fatalf("groups %v, want %v", groups, want)
		}
	})
}

func TestGathererNilTakeTakesAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sizes []int
		g := groupcommit.NewGatherer(nil, func(group []int) {
			sizes = append(sizes, len(group))
			time.Sleep(time.Millisecond)
		})
		g.Start(1)
		g.Add(1)
		synctest.Wait()
		for i := range 100 {
			g.Add(i)
		}
		g.Close()
		if !slices.Equal(sizes, []int{1, 100}) {
			t.Fatalf("group sizes %v, want [1 100]", sizes)
		}
	})
}

func TestGathererLoopsRunTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inFlight, most atomic.Int64
		release := make(chan struct{})
		g := groupcommit.NewGatherer(func([]int) int { return 1 }, func([]int) {
			n := inFlight.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			<-release
			inFlight.Add(-1)
		})
		g.Start(3)
		synctest.Wait()      // every loop waits
		g.Add(0, 1, 2, 3, 4) // one hand-over: the loop that wakes wakes the next
		synctest.Wait()      // three loops hold one item each; two wait
		if got := most.Load(); got != 3 {
			t.Fatalf("%d groups in flight at once, want 3 (one per loop)", got)
		}
		close(release)
		g.Close()
	})
}

// Items handed over before Start wait for it; Close without Start still
// handles them.
func TestGathererItemsWaitForStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []int
		g := groupcommit.NewGatherer(nil, func(group []int) { got = append(got, group...) })
		g.Add(1, 2)
		synctest.Wait()
		if len(got) != 0 || g.Waiting() != 2 {
			t.Fatalf("handled %v before Start", got)
		}
		g.Start(1)
		synctest.Wait()
		g.Add(3)
		g.Close()
		if !slices.Equal(got, []int{1, 2, 3}) {
			t.Fatalf("handled %v, want [1 2 3]", got)
		}
		g2 := groupcommit.NewGatherer(nil, func(group []int) { got = append(got, group...) })
		g2.Add(4)
		g2.Close()
		if !slices.Equal(got, []int{1, 2, 3, 4}) {
			t.Fatalf("Close without Start: handled %v, want [1 2 3 4]", got)
		}
	})
}
