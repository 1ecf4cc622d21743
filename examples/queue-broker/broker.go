package main

import (
	"time"
)

// Metrics is the seed broker's instrumentation contract, method for method: the broker calls it
// after every transition. The seed plugs a Prometheus recorder in; this example plugs in
// StatsdRecorder, and heartwire's mapping rules give the lines back the seed's names.
type Metrics interface {
	IncEnqueued(queue string)
	IncDeduplicated(queue string)
	IncClaimed(queue string)
	IncProcessed(queue string)
	IncRetried(queue string)
	IncDead(queue string)
	AddReaped(queue string, n int)
	AddPromoted(queue string, n int)
	ObserveLatency(queue string, d time.Duration)
}

// States are the seed's depth states, in the order they are reported.
var States = []string{"ready", "inflight", "delayed", "dlq"}

// Job is one unit of work.
type Job struct {
	ID          string
	Queue       string
	Key         string // idempotency key; "" for none
	MaxAttempts int
	CreatedAt   time.Time
	Attempts    int
	due         time.Time // delayed: when it is ready; in flight: its visibility deadline
}

// queue holds one queue's jobs by state, each list in arrival order.
type queue struct {
	ready    []*Job
	inflight []*Job
	delayed  []*Job
	dlq      []*Job
}

// Broker is an in-memory stand-in for the seed's Redis broker, with the same transitions:
// enqueue (deduplicated by idempotency key), claim under a visibility timeout, ack, nack to a
// retry with backoff or to the dead-letter list, reap expired claims, promote due delayed jobs.
// It is not safe for concurrent use: the simulation drives it from one goroutine.
type Broker struct {
	metrics    Metrics
	now        func() time.Time
	visibility time.Duration
	backoff    func(attempts int) time.Duration
	dedupTTL   time.Duration
	queues     map[string]*queue
	names      []string             // queue names, first seen first
	keys       map[string]time.Time // idempotency key (queue + key) → when it may be reused
}

// NewBroker returns an empty broker. backoff gives the wait before a failed job's next attempt,
// from the attempts it has had.
func NewBroker(m Metrics, now func() time.Time, visibility time.Duration, backoff func(int) time.Duration) *Broker {
	return &Broker{
		metrics:    m,
		now:        now,
		visibility: visibility,
		backoff:    backoff,
		dedupTTL:   24 * time.Hour,
		queues:     map[string]*queue{},
		keys:       map[string]time.Time{},
	}
}

func (b *Broker) queue(name string) *queue {
	q, ok := b.queues[name]
	if !ok {
		q = &queue{}
		b.queues[name] = q
		b.names = append(b.names, name)
	}
	return q
}

// Declare makes queues known before their first job, so that they are reported (depth 0) and
// listed in this order.
func (b *Broker) Declare(names ...string) {
	for _, name := range names {
		b.queue(name)
	}
}

// Queues lists the queues seen so far.
func (b *Broker) Queues() []string { return b.names }

// Enqueue adds j, ready now or after delay. A job whose idempotency key was seen within the
// dedup window is dropped and counted as deduplicated; Enqueue then returns false.
func (b *Broker) Enqueue(j Job, delay time.Duration) bool {
	now := b.now()
	if j.Key != "" {
		slot := j.Queue + "\x00" + j.Key
		if until, seen := b.keys[slot]; seen && now.Before(until) {
			b.metrics.IncDeduplicated(j.Queue)
			return false
		}
		b.keys[slot] = now.Add(b.dedupTTL)
	}
	j.CreatedAt = now
	q := b.queue(j.Queue)
	if delay > 0 {
		j.due = now.Add(delay)
		q.delayed = append(q.delayed, &j)
	} else {
		q.ready = append(q.ready, &j)
	}
	b.metrics.IncEnqueued(j.Queue)
	return true
}

// Claim takes the oldest ready job and holds it in flight until its visibility deadline.
func (b *Broker) Claim(name string) (*Job, bool) {
	q := b.queue(name)
	if len(q.ready) == 0 {
		return nil, false
	}
	j := q.ready[0]
	q.ready = q.ready[1:]
	j.Attempts++
	j.due = b.now().Add(b.visibility)
	q.inflight = append(q.inflight, j)
	b.metrics.IncClaimed(name)
	return j, true
}

// Ack finishes a claimed job and records its end-to-end latency, from creation to now. A job
// no longer in flight (reaped meanwhile) is not acked twice.
func (b *Broker) Ack(j *Job) bool {
	q := b.queue(j.Queue)
	if !remove(&q.inflight, j) {
		return false
	}
	b.metrics.IncProcessed(j.Queue)
	b.metrics.ObserveLatency(j.Queue, b.now().Sub(j.CreatedAt))
	return true
}

// Nack fails a claimed job: it waits for a retry while it has attempts left, else it goes to
// the dead-letter list.
func (b *Broker) Nack(j *Job) bool {
	q := b.queue(j.Queue)
	if !remove(&q.inflight, j) {
		return false
	}
	if j.Attempts < j.MaxAttempts {
		j.due = b.now().Add(b.backoff(j.Attempts))
		q.delayed = append(q.delayed, j)
		b.metrics.IncRetried(j.Queue)
		return true
	}
	q.dlq = append(q.dlq, j)
	b.metrics.IncDead(j.Queue)
	return true
}

// Reap puts claims past their visibility deadline back to ready: their worker died or hung.
func (b *Broker) Reap(name string) int {
	q := b.queue(name)
	n := b.release(&q.inflight, &q.ready)
	if n > 0 {
		b.metrics.AddReaped(name, n)
	}
	return n
}

// Promote makes delayed jobs whose time has come ready.
func (b *Broker) Promote(name string) int {
	q := b.queue(name)
	n := b.release(&q.delayed, &q.ready)
	if n > 0 {
		b.metrics.AddPromoted(name, n)
	}
	return n
}

// release moves every job of from that is due to the end of to, keeping their order.
func (b *Broker) release(from, to *[]*Job) int {
	now := b.now()
	kept := (*from)[:0]
	n := 0
	for _, j := range *from {
		if j.due.After(now) {
			kept = append(kept, j)
			continue
		}
		*to = append(*to, j)
		n++
	}
	*from = kept
	return n
}

// Depth is the number of jobs in each of States, in that order.
func (b *Broker) Depth(name string) []int {
	q := b.queue(name)
	return []int{len(q.ready), len(q.inflight), len(q.delayed), len(q.dlq)}
}

func remove(jobs *[]*Job, j *Job) bool {
	for i, held := range *jobs {
		if held == j {
			*jobs = append((*jobs)[:i], (*jobs)[i+1:]...)
			return true
		}
	}
	return false
}
