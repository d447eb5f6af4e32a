package guard

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it started (services, consumers, connections, the
// embedded NATS server, databases, HTTP servers) in its cleanup: nothing may
// outlive the package's tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
