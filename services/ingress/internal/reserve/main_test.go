package reserve

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it started (the reservers, the test responders,
// connections, the embedded NATS server) in its cleanup.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
