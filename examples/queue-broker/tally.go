package main

import "time"

// counts is what one queue went through.
type counts struct {
	enqueued, deduplicated, claimed, processed, retried, dead, reaped, promoted int
	latencies                                                                   int
	latency                                                                     time.Duration
}

// tally is a Metrics that counts every call per queue and passes it on: -once prints it, so
// that what the program did can be held against what heartwire shows.
type tally struct {
	next   Metrics
	counts map[string]*counts
}

func newTally(next Metrics) *tally { return &tally{next: next, counts: map[string]*counts{}} }

func (t *tally) of(q string) *counts {
	c, ok := t.counts[q]
	if !ok {
		c = &counts{}
		t.counts[q] = c
	}
	return c
}

func (t *tally) IncEnqueued(q string)     { t.of(q).enqueued++; t.next.IncEnqueued(q) }
func (t *tally) IncDeduplicated(q string) { t.of(q).deduplicated++; t.next.IncDeduplicated(q) }
func (t *tally) IncClaimed(q string)      { t.of(q).claimed++; t.next.IncClaimed(q) }
func (t *tally) IncProcessed(q string)    { t.of(q).processed++; t.next.IncProcessed(q) }
func (t *tally) IncRetried(q string)      { t.of(q).retried++; t.next.IncRetried(q) }
func (t *tally) IncDead(q string)         { t.of(q).dead++; t.next.IncDead(q) }
func (t *tally) AddReaped(q string, n int) {
	t.of(q).reaped += n
	t.next.AddReaped(q, n)
}
func (t *tally) AddPromoted(q string, n int) {
	t.of(q).promoted += n
	t.next.AddPromoted(q, n)
}
func (t *tally) ObserveLatency(q string, d time.Duration) {
	c := t.of(q)
	c.latencies++
	c.latency += d
	t.next.ObserveLatency(q, d)
}
