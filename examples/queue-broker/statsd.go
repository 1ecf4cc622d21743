package main

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// maxDatagram keeps a datagram within one Ethernet frame (1500 bytes less the IP and UDP
// headers, with room for IPv6): larger ones get fragmented, and one lost fragment loses all.
const maxDatagram = 1432

// StatsdRecorder implements Metrics with plain StatsD lines over UDP, in the names the mapping
// file expects:
//
//	relay.jobs.<transition>.<queue>:<n>|c    IncEnqueued … IncDead, AddReaped, AddPromoted
//	relay.job.latency.<queue>:<ms>|ms        ObserveLatency
//	relay.queue.depth.<queue>.<state>:<n>|g  Depth, for the seed's pull-time depth collector
//
// Lines are packed into datagrams, newline-separated, and sent when the next would not fit or
// on Flush. Sending never blocks the broker or fails it: a lost datagram costs metrics, not
// jobs, and failed writes are counted (see Sent). Safe for concurrent use.
type StatsdRecorder struct {
	mu        sync.Mutex
	conn      net.Conn
	buf       []byte
	lines     int // lines sent or buffered
	datagrams int // datagrams sent
	errors    int // datagrams the kernel refused, e.g. nothing listening (ECONNREFUSED)
}

// DialStatsd returns a recorder sending to addr (host:port).
func DialStatsd(addr string) (*StatsdRecorder, error) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("statsd address %q: %w", addr, err)
	}
	return &StatsdRecorder{conn: conn, buf: make([]byte, 0, maxDatagram)}, nil
}

// Close flushes what is buffered and closes the socket.
func (r *StatsdRecorder) Close() error {
	r.Flush()
	return r.conn.Close()
}

func (r *StatsdRecorder) IncEnqueued(q string)        { r.count("enqueued", q, 1) }
func (r *StatsdRecorder) IncDeduplicated(q string)    { r.count("deduplicated", q, 1) }
func (r *StatsdRecorder) IncClaimed(q string)         { r.count("claimed", q, 1) }
func (r *StatsdRecorder) IncProcessed(q string)       { r.count("processed", q, 1) }
func (r *StatsdRecorder) IncRetried(q string)         { r.count("retried", q, 1) }
func (r *StatsdRecorder) IncDead(q string)            { r.count("dead", q, 1) }
func (r *StatsdRecorder) AddReaped(q string, n int)   { r.count("reaped", q, n) }
func (r *StatsdRecorder) AddPromoted(q string, n int) { r.count("promoted", q, n) }
func (r *StatsdRecorder) ObserveLatency(q string, d time.Duration) {
	ms := strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64)
	r.add("relay.job.latency." + q + ":" + ms + "|ms")
}

// Depth reports how many jobs queue q holds in each of States (depth[i] for States[i]).
func (r *StatsdRecorder) Depth(q string, depth []int) {
	for i, n := range depth {
		r.add("relay.queue.depth." + q + "." + States[i] + ":" + strconv.Itoa(n) + "|g")
	}
}

// count sends a counter increment; a batch of none (a reaper pass that found nothing) is not
// an event and sends nothing, as the seed's recorder records nothing.
func (r *StatsdRecorder) count(transition, q string, n int) {
	if n <= 0 {
		return
	}
	r.add("relay.jobs." + transition + "." + q + ":" + strconv.Itoa(n) + "|c")
}

func (r *StatsdRecorder) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) > 0 && len(r.buf)+1+len(line) > maxDatagram {
		r.flushLocked()
	}
	if len(r.buf) > 0 {
		r.buf = append(r.buf, '\n')
	}
	r.buf = append(r.buf, line...)
	r.lines++
}

// Flush sends the lines buffered so far.
func (r *StatsdRecorder) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
}

func (r *StatsdRecorder) flushLocked() {
	if len(r.buf) == 0 {
		return
	}
	if _, err := r.conn.Write(r.buf); err != nil {
		r.errors++
	}
	r.datagrams++
	r.buf = r.buf[:0]
}

// Sent reports the recorder's counts so far.
func (r *StatsdRecorder) Sent() (lines, datagrams, errors int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines, r.datagrams, r.errors
}
