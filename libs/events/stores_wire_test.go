package events_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/apitosms/apitosms/libs/events"
)

// The stores replies' wire JSON, as the stores service wrote it before its
// types moved here (captured from its former rpcapi.View, rpcapi.LogEntry and
// the preview's map): decoding and encoding again gives the same bytes, so
// the move changed nothing on the wire.
func TestStoreRepliesRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		wire string
		into any
	}{
		{"view", `{"id":"st_0123456789abcdef0123456789abcdef","platform":"shopify","name":"Shop","webhookUrl":"https://x/hooks/shopify/st_1","defaultCountry":"DE","adminPhones":["+4911"],"templates":{"order_created":{"enabled":false,"text":"x"},"order_paid":{"enabled":true,"text":"Paid {order_number}"}},"phoneFrom":["billing","shipping"],"createdAt":"2026-12-01T10:00:00.000Z","updatedAt":"2026-12-01T11:00:00.000Z"}`, &events.StoreView{}},
		{"view with secret", `{"id":"st_0123456789abcdef0123456789abcdef","platform":"shopify","name":"Shop","webhookUrl":"https://x/hooks/shopify/st_1","defaultCountry":"DE","adminPhones":["+4911"],"templates":{"order_created":{"enabled":false,"text":"x"},"order_paid":{"enabled":true,"text":"Paid {order_number}"}},"phoneFrom":["billing","shipping"],"createdAt":"2026-12-01T10:00:00.000Z","updatedAt":"2026-12-01T11:00:00.000Z","secret":"sek"}`, &events.StoreView{}},
		{"list", `{"stores":[{"id":"st_0123456789abcdef0123456789abcdef","platform":"shopify","name":"Shop","webhookUrl":"https://x/hooks/shopify/st_1","defaultCountry":"DE","adminPhones":["+4911"],"templates":{"order_created":{"enabled":false,"text":"x"},"order_paid":{"enabled":true,"text":"Paid {order_number}"}},"phoneFrom":["billing","shipping"],"createdAt":"2026-12-01T10:00:00.000Z","updatedAt":"2026-12-01T11:00:00.000Z","secret":"sek"}]}`, &events.StoreList{}},
		{"empty list", `{"stores":[]}`, &events.StoreList{}},
		{"log page", `{"entries":[{"id":"log_7","at":"2026-12-01T10:00:00.000Z","deliveryId":"d1","topic":"orders/paid","event":"order_paid","orderNumber":"#1001","recipient":"+4912","decision":"sent","reason":null,"hash":"00aa"}],"nextCursor":"log_7"}`, &events.StoreLogPage{}},
		{"last empty log page", `{"entries":[],"nextCursor":null}`, &events.StoreLogPage{}},
		{"preview", `{"encoding":"GSM-7","segments":1,"text":"Hi"}`, &events.StorePreview{}},
	} {
		if err := json.Unmarshal([]byte(c.wire), c.into); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if reflect.ValueOf(c.into).Elem().IsZero() {
			t.Fatalf("%s: decoded nothing", c.name)
		}
		got, err := json.Marshal(c.into)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.wire {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.wire)
		}
	}
}
