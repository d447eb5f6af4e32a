package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Download kinds (label "kind" of apitosms_releases_downloads_total).
const (
	kindFull        = "full"         // a counted GET starting at byte 0
	kindRange       = "range"        // a Range continuation (not counted)
	kindHead        = "head"         // HEAD (not counted)
	kindNotModified = "not_modified" // 304 (not counted)
)

// Upload outcomes (label "outcome" of apitosms_releases_uploads_total).
const (
	outcomePublished = "published"
	outcomeInvalid   = "invalid"
	outcomeDuplicate = "duplicate"
	outcomeTooLarge  = "too_large"
	outcomeError     = "error"
)

// Metrics of the releases HTTP API.
type Metrics struct {
	downloads     *prometheus.CounterVec
	downloadBytes prometheus.Counter
	uploads       *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg (promauto: it panics if one is there already, a wiring mistake).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(prometheus.WrapRegistererWithPrefix("apitosms_releases_", reg))
	m := &Metrics{
		downloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "downloads_total",
			Help: "APK download requests answered, by kind (full, range, head, not_modified).",
		}, []string{"kind"}),
		downloadBytes: f.NewCounter(prometheus.CounterOpts{
			Name: "download_bytes_total",
			Help: "APK bytes sent to clients.",
		}),
		uploads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "uploads_total",
			Help: "APK uploads, by outcome (published, invalid, duplicate, too_large, error).",
		}, []string{"outcome"}),
	}
	for _, k := range []string{kindFull, kindRange, kindHead, kindNotModified} {
		m.downloads.WithLabelValues(k)
	}
	for _, o := range []string{outcomePublished, outcomeInvalid, outcomeDuplicate, outcomeTooLarge, outcomeError} {
		m.uploads.WithLabelValues(o)
	}
	return m
}
