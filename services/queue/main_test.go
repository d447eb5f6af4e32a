package queue_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it started (Run, consumers, connections, the
// embedded NATS server, databases) in its cleanup: nothing may outlive it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
