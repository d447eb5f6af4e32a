// Package metrics holds the releases service's own Prometheus metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Download kinds (label "kind" of apitosms_releases_downloads_total).
const (
	KindFull        = "full"         // a counted GET starting at byte 0
	KindRange       = "range"        // a Range continuation (not counted)
	KindHead        = "head"         // HEAD (not counted)
	KindNotModified = "not_modified" // 304 (not counted)
)

// Upload outcomes (label "outcome" of apitosms_releases_uploads_total).
const (
	OutcomePublished = "published"
	OutcomeInvalid   = "invalid"
	OutcomeDuplicate = "duplicate"
	OutcomeTooLarge  = "too_large"
	OutcomeError     = "error"
)

// Metrics of the releases service.
type Metrics struct {
	Downloads     *prometheus.CounterVec
	DownloadBytes prometheus.Counter
	Uploads       *prometheus.CounterVec
}

// New registers the metrics on reg (promauto: it panics if one is there already, a wiring mistake).
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(prometheus.WrapRegistererWithPrefix("apitosms_releases_", reg))
	m := &Metrics{
		Downloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "downloads_total",
			Help: "APK download requests answered, by kind (full, range, head, not_modified).",
		}, []string{"kind"}),
		DownloadBytes: f.NewCounter(prometheus.CounterOpts{
			Name: "download_bytes_total",
			Help: "APK bytes sent to clients.",
		}),
		Uploads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "uploads_total",
			Help: "APK uploads, by outcome (published, invalid, duplicate, too_large, error).",
		}, []string{"outcome"}),
	}
	for _, k := range []string{KindFull, KindRange, KindHead, KindNotModified} {
		m.Downloads.WithLabelValues(k)
	}
	for _, o := range []string{OutcomePublished, OutcomeInvalid, OutcomeDuplicate, OutcomeTooLarge, OutcomeError} {
		m.Uploads.WithLabelValues(o)
	}
	return m
}
