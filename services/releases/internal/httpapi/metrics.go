package httpapi

import "github.com/prometheus/client_golang/prometheus"

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

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		downloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitosms_releases_downloads_total",
			Help: "APK download requests answered, by kind (full, range, head, not_modified).",
		}, []string{"kind"}),
		downloadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apitosms_releases_download_bytes_total",
			Help: "APK bytes sent to clients.",
		}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitosms_releases_uploads_total",
			Help: "APK uploads, by outcome (published, invalid, duplicate, too_large, error).",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.downloads, m.downloadBytes, m.uploads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, k := range []string{kindFull, kindRange, kindHead, kindNotModified} {
		m.downloads.WithLabelValues(k)
	}
	for _, o := range []string{outcomePublished, outcomeInvalid, outcomeDuplicate, outcomeTooLarge, outcomeError} {
		m.uploads.WithLabelValues(o)
	}
	return m, nil
}
