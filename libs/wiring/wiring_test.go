package wiring_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/apitosms/apitosms/libs/wiring"
)

type fakeDeps struct {
	Broker   *struct{}
	DB       *struct{}
	Reader   *struct{}
	Names    string
	Replicas int
	Reg      interface{ M() }
	Log      *slog.Logger
}

func TestCheckNamesWhatIsMissing(t *testing.T) {
	err := wiring.Check("billing", fakeDeps{}, "Reader")
	if err == nil || err.Error() != "billing: Broker, DB, Reg missing" {
		t.Fatalf("Check = %v, want \"billing: Broker, DB, Reg missing\"", err)
	}
	full := fakeDeps{Broker: &struct{}{}, DB: &struct{}{}, Reg: m{}}
	if err := wiring.Check("billing", &full, "Reader"); err != nil {
		t.Errorf("Check with every required field = %v, want nil", err)
	}
	if err := wiring.Check("billing", full); err == nil || err.Error() != "billing: Reader missing" {
		t.Errorf("Check without optional = %v, want Reader missing", err)
	}
}

type m struct{}

func (m) M() {}

func TestDefaultAndLogger(t *testing.T) {
	n, d, set := 0, time.Duration(-1), 7
	wiring.Default(&n, 5)
	wiring.Default(&d, time.Second)
	wiring.Default(&set, 5)
	if n != 5 || d != time.Second || set != 7 {
		t.Errorf("Default: %d %v %d, want 5 1s 7", n, d, set)
	}
	if wiring.Logger(nil, "x") == nil {
		t.Error("Logger(nil) = nil")
	}
}
