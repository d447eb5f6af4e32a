package app

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitosms/apitosms/internal/phonesim"
	"github.com/apitosms/apitosms/libs/config"
	"github.com/apitosms/apitosms/libs/events"
	"github.com/apitosms/apitosms/libs/testkit"
)

// TestConsoleSystemSplit: the operator's system page in a split
// deployment (separate processes: billing+status, two queues, webhooks,
// ingress, console) shows every replica's answer gathered over NATS: two
// queue replicas ready, the waiting messages queued through ingress, the
// webhook backlog, the phone that pulled online, a service nobody runs as "no replica answered", and a
// replica that stopped no longer counted.
func TestConsoleSystemSplit(t *testing.T) {
	testkit.Each(t, func(t *testing.T, b testkit.Backend) {
		env := map[string]string{"APITOSMS_QUEUE_BACKLOG_INTERVAL": "200ms"}
		core := start(t, b, env, "-target=billing,status")
		start(t, b, env, "-target=queue")
		start(t, b, env, "-target=queue")
		hooks := start(t, b, env, "-target=webhooks")
		in := start(t, b, env, "-target=ingress")
		con := start(t, b, consoleEnv(t, env), "-target=console")

		_, tok := account(t, core.base, 1000, 600)
		for range 3 {
			if r := do(t, "POST", in.base+"/api/"+tok+"/queue", []map[string]string{{"phone": "+15550001234", "message": "hi"}}); r.status != 200 {
				t.Fatalf("queue: %d %s", r.status, r.body)
			}
		}

		// A phone pulls once (and takes one message): it is online.
		phone := phonesim.New(phonesim.Config{URL: in.base, Token: tok, Device: "Pixel-8", Limit: 1})
		if _, err := phone.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}

		o := newBrowser(t, con.base)
		f := o.get("/console/admin/signin")
		if r := o.post("/console/admin/signin", url.Values{"csrf": {csrf(t, f)}, "token": {adminToken}}); r.status != 303 {
			t.Fatalf("operator sign-in: %d %.300s", r.status, r.body)
		}
		row := func(body, svc string) string {
			m := regexp.MustCompile(`(?s)<tr id="svc-` + svc + `">(.*?)</tr>`).FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("no row for %s: %.4000s", svc, body)
			}
			return m[1]
		}
		var page string
		testkit.Eventually(t, 20*time.Second, "two waiting messages and one phone online on the system page", func() bool {
			page = o.get("/console/admin/system").body
			return strings.Contains(page, `<h2>Waiting messages</h2><p class="big">2</p>`) &&
				strings.Contains(page, `<h2>Phones online</h2><p class="big">1</p>`)
		})
		for svc, want := range map[string]string{"queue": "2", "webhooks": "1", "ingress": "1", "billing": "1", "status": "1", "console": "1"} {
			r := row(page, svc)
			if !strings.Contains(r, `data-label="Replicas answering">`+want+"<") || !strings.Contains(r, `<span class="badge ok">ready</span>`) {
				t.Fatalf("%s row (want %s replicas, ready): %s", svc, want, r)
			}
		}
		for _, svc := range []string{"stores", "releases"} {
			if r := row(page, svc); !strings.Contains(r, "no replica answered") {
				t.Fatalf("%s row: %s", svc, r)
			}
		}
		for _, label := range []string{"Oldest waiting message", "Webhook events undelivered", "Oldest undelivered webhook event"} {
			if !strings.Contains(page, "<h2>"+label+"</h2>") {
				t.Fatalf("no %q gauge: %.4000s", label, page)
			}
		}
		if n := strings.Count(page, `<td data-label="Replica" class="mono">`); n != 6 {
			t.Fatalf("%d replicas listed, want 6: %.4000s", n, page)
		}

		// The webhooks process stops: it is shown as not answering, and its
		// backlog is no longer known.
		hooks.stop(t)
		page = o.get("/console/admin/system").body
		if r := row(page, "webhooks"); !strings.Contains(r, "no replica answered") {
			t.Fatalf("webhooks after it stopped: %s", r)
		}
		if strings.Contains(page, "<h2>Webhook events undelivered</h2>") {
			t.Fatal("webhook backlog shown with no webhooks replica")
		}
	})
}

// TestHealthServicesAreTheTargets: the lists outside internal/app that
// cannot read the targets table name every target and nothing else: the
// system page's list of services (events.Services, "no replica answered"
// for a missing one) and APITOSMS_TARGET's line in the help.
func TestHealthServicesAreTheTargets(t *testing.T) {
	got := slices.Sorted(slices.Values(events.Services))
	want := slices.Sorted(slices.Values(targetNames()))
	if !slices.Equal(got, want) {
		t.Fatalf("events.Services = %v, targets = %v", got, want)
	}
	if list := strings.Join(targetNames(), ", "); !strings.Contains(config.Meaning("APITOSMS_TARGET"), "all, or a comma list of "+list+" ") {
		t.Fatalf("APITOSMS_TARGET's help %q does not list the targets %s", config.Meaning("APITOSMS_TARGET"), list)
	}
}
