package app

import (
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// registerProcessMetrics registers what every process reports besides its
// services' own metrics: build info, the NATS connection, the database
// pools it opened, and the namespace's JetStream streams. Call it once the
// databases are open.
func registerProcessMetrics(in *infra, targets []string, svcs []service) {
	version, commit := buildVersion()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "apitosms_build_info",
		Help: "Always 1; the labels say which build runs and which services this process runs.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": runtime.Version(),
			"targets": strings.Join(targets, ",")},
	})
	build.Set(1)
	in.reg.MustRegister(build)

	conn := in.broker.Conn
	in.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "apitosms_nats_connected",
			Help: "1 while the NATS connection is up, 0 while it is reconnecting or closed.",
		}, func() float64 {
			if conn.IsConnected() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "apitosms_nats_reconnects_total",
			Help: "Times the NATS connection was re-established.",
		}, func() float64 { return float64(conn.Stats().Reconnects) }),
	)
	in.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "apitosms_ready",
		Help: "1 when this process would answer /readyz with 200 (its broker and databases reachable), checked at scrape time.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := in.broker.Ready(ctx); err != nil {
			return 0
		}
		for _, s := range svcs {
			if s.Ready(ctx) != nil {
				return 0
			}
		}
		return 1
	}))
	// One sql.DBStats collector per service database (db_name = service).
	for name, db := range in.dbs {
		in.reg.MustRegister(collectors.NewDBStatsCollector(db.DB, name))
	}
	in.reg.MustRegister(&streamCollector{js: in.broker.JS, prefix: streamPrefix(in.names.AcceptedStream())})
	in.reg.MustRegister(dataDirCollector(in.common.DataDir))
}

var (
	descDiskFree = prometheus.NewDesc("apitosms_data_dir_free_bytes",
		"Bytes available to this process on the filesystem of APITOSMS_DATA_DIR (the embedded NATS store and SQLite files).", nil, nil)
	descDiskSize = prometheus.NewDesc("apitosms_data_dir_size_bytes",
		"Size of the filesystem of APITOSMS_DATA_DIR.", nil, nil)
)

// dataDirCollector reports the free and total space of the data dir's
// filesystem (of its nearest existing parent until it exists), so an
// operator sees the embedded store filling up before writes fail.
type dataDirCollector string

func (d dataDirCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDiskFree
	ch <- descDiskSize
}

func (d dataDirCollector) Collect(ch chan<- prometheus.Metric) {
	free, size, ok := diskSpace(string(d))
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, free)
	ch <- prometheus.MustNewConstMetric(descDiskSize, prometheus.GaugeValue, size)
}

// buildVersion reads the module version and VCS revision the Go toolchain
// stamped into the binary.
func buildVersion() (version, commit string) {
	version, commit = "unknown", "unknown"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if info.Main.Version != "" {
		version = info.Main.Version
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && commit != "unknown" {
		commit += "-dirty"
	}
	return
}

// streamPrefix is the stream-name prefix of a namespace ("APITOSMS_"),
// derived from one of its stream names.
func streamPrefix(accepted string) string {
	return strings.TrimSuffix(accepted, "SMS_ACCEPTED")
}

var (
	streamLabels   = []string{"stream"}
	descStreamUp   = prometheus.NewDesc("apitosms_jetstream_up", "1 when the namespace's streams could be listed at this scrape.", nil, nil)
	descStreamMsgs = prometheus.NewDesc("apitosms_jetstream_stream_messages", "Messages held by the stream.", streamLabels, nil)
	descStreamByte = prometheus.NewDesc("apitosms_jetstream_stream_bytes", "Bytes held by the stream.", streamLabels, nil)
	descStreamCons = prometheus.NewDesc("apitosms_jetstream_stream_consumers", "Consumers of the stream.", streamLabels, nil)
	descStreamAge  = prometheus.NewDesc("apitosms_jetstream_stream_first_message_timestamp_seconds",
		"Time the oldest message still held was stored (0 when empty). On the accepted stream (interest retention) that is the oldest accepted batch not yet stored by both consumers.", streamLabels, nil)
	descStreamRepl = prometheus.NewDesc("apitosms_jetstream_stream_replicas", "Configured replicas of the stream.", streamLabels, nil)
	descStreamCur  = prometheus.NewDesc("apitosms_jetstream_stream_replicas_current",
		"Replicas of the stream that are online and current, leader included (1 on a single server).", streamLabels, nil)
)

// streamCollector reads the namespace's streams (and its KV and object
// store buckets) from JetStream at scrape time. Every process reports the
// same figures: aggregate with max by (stream).
type streamCollector struct {
	js     jetstream.JetStream
	prefix string
}

func (s *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreamUp, descStreamMsgs, descStreamByte, descStreamCons, descStreamAge, descStreamRepl, descStreamCur} {
		ch <- d
	}
}

func (s *streamCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	up := 1.0
	list := s.js.ListStreams(ctx)
	for info := range list.Info() {
		name := info.Config.Name
		if !strings.HasPrefix(name, s.prefix) && !strings.HasPrefix(name, "KV_"+s.prefix) && !strings.HasPrefix(name, "OBJ_"+s.prefix) {
			continue
		}
		st := info.State
		ch <- prometheus.MustNewConstMetric(descStreamMsgs, prometheus.GaugeValue, float64(st.Msgs), name)
		ch <- prometheus.MustNewConstMetric(descStreamByte, prometheus.GaugeValue, float64(st.Bytes), name)
		ch <- prometheus.MustNewConstMetric(descStreamCons, prometheus.GaugeValue, float64(st.Consumers), name)
		first := 0.0
		if st.Msgs > 0 && !st.FirstTime.IsZero() {
			first = float64(st.FirstTime.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descStreamAge, prometheus.GaugeValue, first, name)
		ch <- prometheus.MustNewConstMetric(descStreamRepl, prometheus.GaugeValue, float64(max(info.Config.Replicas, 1)), name)
		current := 1.0
		if info.Cluster != nil {
			if info.Cluster.Leader == "" {
				current = 0
			}
			for _, p := range info.Cluster.Replicas {
				if p.Current && !p.Offline {
					current++
				}
			}
		}
		ch <- prometheus.MustNewConstMetric(descStreamCur, prometheus.GaugeValue, current, name)
	}
	if list.Err() != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(descStreamUp, prometheus.GaugeValue, up)
}
