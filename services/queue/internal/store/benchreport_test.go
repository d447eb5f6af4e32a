package store_test

import (
	"time"

	"github.com/apitosms/apitosms/services/queue/internal/store"
)

var benchAt = time.Now()

func benchReport(pos int64) store.Report {
	return store.Report{AccountID: 1, Pos: pos, Status: store.StatusSent, Device: "MyPhone", At: benchAt}
}
