package httpapi

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/apitosms/apitosms/libs/testkit"
)

// Every test stops what it started (services, consumers, connections, the
// embedded NATS server, databases, HTTP servers) in its cleanup: nothing may
// outlive the package's tests but fasthttp's own (testkit.LeakIgnores).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testkit.LeakIgnores()...) }
