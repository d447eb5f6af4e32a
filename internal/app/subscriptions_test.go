package app

import (
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/testkit"
)

// Message events are published only for accounts with a subscribed
// endpoint, and an endpoint gets the events of every report sent after its
// creation was answered, with no wait: the webhooks service announces the
// change to every queue replica before answering. Run all-in-one and with
// two queue replicas and the webhooks service in processes of their own.
func TestMessageEventsOnlyForSubscribers(t *testing.T) {
	// Each layout on fresh infrastructure: the all-in-one layout's own
	// embedded NATS server leaves databases the split layout's shared one
	// knows nothing of.
	for _, layout := range []string{"all-in-one", "split"} {
		t.Run(layout, func(t *testing.T) {
			testkit.Each(t, func(t *testing.T, b testkit.Backend) {
				env := map[string]string{"APITOSMS_WEBHOOK_ALLOW_PRIVATE": "true"}
				var base string
				var queues []string // bases of the processes running the queue
				if layout == "all-in-one" {
					p := allInOne(t, b, env)
					base, queues = p.base, []string{p.base}
				} else {
					core := start(t, b, env, "-target=ingress,billing,status")
					q1 := start(t, b, env, "-target=queue")
					q2 := start(t, b, env, "-target=queue")
					start(t, b, env, "-target=webhooks")
					base, queues = core.base, []string{q1.base, q2.base}
				}
				counter := func(name string) float64 {
					sum := 0.0
					for _, q := range queues {
						sum += metric(t, q, name)
					}
					return sum
				}
				testkit.Eventually(t, 30*time.Second, "queue replicas know the subscriptions", func() bool {
					return counter("apitosms_queue_webhook_subscriptions_known") == float64(len(queues))
				})
				drain := func(tok string, n int, status int) []string {
					t.Helper()
					hashes := queueN(t, base, tok, items("sub", n))
					got := 0
					testkit.Eventually(t, 60*time.Second, "messages handed out", func() bool {
						r := do(t, "GET", base+"/api/"+tok+"/get_messages?limit=100", nil)
						if r.status != 200 {
							t.Logf("get_messages %d %s", r.status, r.body)
							return false
						}
						got += len(r.list(t))
						return got == n
					})
					var report []map[string]any
					for _, h := range hashes {
						report = append(report, map[string]any{"hash": h, "status": status})
					}
					if r := do(t, "POST", base+"/api/"+tok+"/status", map[string]any{"messages": report}); r.status != 200 || r.json(t)["updated"] != float64(n) {
						t.Fatalf("status: %d %s", r.status, r.body)
					}
					return hashes
				}

				// No endpoint: the outcomes are recorded, no event is published.
				_, quiet := account(t, base, 1000, 60000)
				drain(quiet, 3, 2)
				testkit.Eventually(t, 15*time.Second, "three events skipped", func() bool {
					return counter("apitosms_queue_events_skipped_total") == 3
				})
				if n := counter("apitosms_queue_events_published_total"); n != 0 {
					t.Fatalf("%v events published for an account without webhooks", n)
				}

				// An endpoint created just before the messages are sent and
				// reported gets every event of its types, and only those.
				published := 0
				for i := range 4 {
					_, tok := account(t, base, 1000, 60000)
					rc := newHookReceiver(t, 0)
					secret := newHook(t, base, tok, rc, []string{"message.failed"})
					hashes := drain(tok, 2, 3)
					testkit.Eventually(t, 20*time.Second, "two message.failed events", func() bool { return len(hookEvents(t, rc, secret)) >= 2 })
					got := hookEvents(t, rc, secret)
					for _, h := range hashes {
						if evs := got["msg_"+h+"_failed"]; len(got) != 2 || len(evs) == 0 || evs[0].Type != "message.failed" {
							t.Fatalf("round %d: events %v", i, got)
						}
					}
					published += 2
					// A type the endpoint does not take is not published.
					drain(tok, 1, 2)
				}
				testkit.Eventually(t, 15*time.Second, "counters", func() bool {
					return counter("apitosms_queue_events_skipped_total") == float64(3+4)
				})
				if n := counter("apitosms_queue_events_published_total"); n != float64(published) {
					t.Fatalf("%v events published, want %d", n, published)
				}
			})
		})
	}
}
