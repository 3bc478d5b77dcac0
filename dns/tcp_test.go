package dns

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridian/meridian/internal/wait"
)

// TestTCPPipelined sends many queries on one TCP connection, 16 in flight
// at a time as dnsperf -q 16 does, for answers of every size (one that UDP
// would truncate, one that fills 64KiB and is trimmed to fit): every query
// is answered, with its ID, whatever the number of queries the connection
// carries.
func TestTCPPipelined(t *testing.T) {
	const (
		inflight = 16
		total    = 200 // more than miekg's default of 128 queries per connection
	)
	_, addr := startServer(t, testConfig(), manyInstances(1200))
	names := []struct {
		name  string
		qtype uint16
	}{
		{"web.service.consul.", dns.TypeA},   // 1200 A records, 40KiB: UDP would truncate them
		{"web.service.consul.", dns.TypeSRV}, // with their addresses, over 64KiB: trimmed to fit
		{"node-with-a-long-name-07.node.consul.", dns.TypeA},
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	conn := &dns.Conn{Conn: c}

	sent := map[uint16]int{} // ID -> index into names
	send := func(i int) {
		q := names[i%len(names)]
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.Id = uint16(i + 1)
		sent[m.Id] = i % len(names)
		if err := conn.WriteMsg(m); err != nil {
			t.Fatalf("write query %d: %v", i, err)
		}
	}
	next := 0
	for ; next < inflight; next++ {
		send(next)
	}
	for got := 0; got < total; got++ {
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		r, err := conn.ReadMsg()
		if err != nil {
			t.Fatalf("answer %d of %d (%d sent): %v", got+1, total, next, err)
		}
		i, ok := sent[r.Id]
		if !ok {
			t.Fatalf("answer with ID %d that was not asked or was answered twice", r.Id)
		}
		delete(sent, r.Id)
		q := names[i]
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Fatalf("answer to %s %s = rcode %s with %d records, want records", q.name, dns.TypeToString[q.qtype], dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		if next < total {
			send(next)
			next++
		}
	}
	if len(sent) != 0 {
		t.Errorf("%d queries unanswered: %v", len(sent), fmt.Sprint(sent))
	}
}

// TestTCPSlowReaderDropped sends queries for 7MiB of answers on one TCP
// connection and reads none: once a write of the server has waited
// TCPWriteTimeout on the full connection, the server closes it, instead of
// holding its goroutine and socket (and its Shutdown) for as long as the
// client likes. The client sees it when its next writes fail.
func TestTCPSlowReaderDropped(t *testing.T) {
	// Answers of 61KiB each (1800 A records, sent whole), more than the
	// socket buffers hold, in fewer queries than miekg closes a
	// connection after.
	const queries = 120
	cfg := testConfig()
	cfg.TCPWriteTimeout = 200 * time.Millisecond
	_, addr := startServer(t, cfg, manyInstances(1800))
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	conn := &dns.Conn{Conn: c}
	query := func(id uint16) error {
		m := new(dns.Msg)
		m.SetQuestion("web.service.consul.", dns.TypeA)
		m.Id = id
		return conn.WriteMsg(m)
	}
	for i := range queries {
		if err := query(uint16(i + 1)); err != nil {
			t.Fatalf("write query %d: %v", i, err)
		}
	}
	start := time.Now()
	id := uint16(queries)
	// The server's close shows as a failed write.
	wait.Eventually(t, 60*time.Second, func() error {
		id++
		if err := query(id); err != nil {
			t.Logf("connection closed by the server %v after the last query: %v", time.Since(start).Round(time.Millisecond), err)
			return nil
		}
		return fmt.Errorf("query %d written: a client that reads none of its answers still has its connection, want it closed after TCPWriteTimeout (%v)", id, cfg.TCPWriteTimeout)
	})
}
