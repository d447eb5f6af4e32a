package testkit

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a NATS cluster of real servers running in the test process,
// each with JetStream and its own store directory, joined by routes on
// loopback. Tests use it for what one server cannot show: replicated
// streams, leader elections, a node going away.
type Cluster struct {
	t       testing.TB
	opts    []*server.Options
	Servers []*server.Server // nil while a server is shut down
}

// StartCluster starts n (≥ 3 for a quorum that survives one loss) servers
// and waits until JetStream has elected a meta leader. They stop when the
// test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	dir := t.TempDir()
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	c := &Cluster{t: t, Servers: make([]*server.Server, n)}
	for i := range n {
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   fmt.Sprintf("%s/n%d", dir, i+1),
			MaxPayload: 16 << 20,
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: "testkit",
				Host: "127.0.0.1",
				Port: routePorts[i],
			},
		})
	}
	t.Cleanup(func() {
		for i := range c.Servers {
			c.Shutdown(i)
		}
	})
	for i := range n {
		c.Restart(i)
	}
	Eventually(t, 30*time.Second, "a JetStream meta leader", func() bool { return c.MetaLeader() >= 0 })
	return c
}

// URLs are the servers' client URLs.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
	}
	return urls
}

// URL lists every server, as a client configuration would
// (APITOSMS_NATS_URL).
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// MetaLeader returns the index of the JetStream meta leader, or -1.
func (c *Cluster) MetaLeader() int {
	for i, s := range c.Servers {
		if s != nil && s.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// StreamLeader returns the index of the server leading stream (in the
// default account), or -1.
func (c *Cluster) StreamLeader(stream string) int {
	for i, s := range c.Servers {
		if s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// Healthy reports whether every running server is healthy: JetStream up
// and every stream and consumer replica it holds caught up (what a rolling
// restart waits for before taking the next node down).
func (c *Cluster) Healthy() bool {
	for _, s := range c.Servers {
		if s != nil && s.Healthz(&server.HealthzOptions{}).Status != "ok" {
			return false
		}
	}
	return true
}

// Shutdown stops server i (as a crash of its node would, minus the lost
// page cache: its store stays for a restart).
func (c *Cluster) Shutdown(i int) {
	if s := c.Servers[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.Servers[i] = nil
	}
}

// Restart starts server i again on its ports and store.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if c.Servers[i] != nil {
		return
	}
	o := *c.opts[i]
	o.Routes = server.RoutesFromStr(routeString(c.opts))
	s, err := server.NewServer(&o)
	if err != nil {
		c.t.Fatalf("nats server %d: %v", i+1, err)
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		c.t.Fatalf("nats server %d did not become ready", i+1)
	}
	c.Servers[i] = s
}

func routeString(opts []*server.Options) string {
	routes := make([]string, len(opts))
	for i, o := range opts {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", o.Cluster.Port)
	}
	return strings.Join(routes, ",")
}

// freePorts returns n loopback ports that were free a moment ago (held
// together, so they differ).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	lns := make([]net.Listener, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], ports[i] = ln, ln.Addr().(*net.TCPAddr).Port
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
