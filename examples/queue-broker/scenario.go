package main

import (
	"sort"
	"time"
)

type action int

const (
	enqueue      action = iota // add a job (Key: idempotency key; Delay: ready later)
	claimAck                   // a worker claims the next ready job and succeeds
	claimNack                  // a worker claims the next ready job and fails
	claimAbandon               // a worker claims the next ready job and dies holding it
	promote                    // the promoter releases due delayed jobs
	reap                       // the reaper takes back claims past their deadline
)

// step is one thing that happens to a queue, At after the start.
type step struct {
	At    time.Duration
	Queue string
	Do    action
	Job   string
	Key   string
	Delay time.Duration
}

// attempts is each scenario queue's retry budget.
var attempts = map[string]int{"emails": 3, "reports": 1}

// scenarioVisibility is how long a claim may stay unacked before the reaper takes it back.
const scenarioVisibility = 30 * time.Second

// scenarioBackoff waits 1 s, 2 s, 4 s… after the 1st, 2nd, 3rd… attempt: the seed's backoff at
// its ceiling, without the jitter, so that the run is the same every time.
func scenarioBackoff(attempts int) time.Duration {
	return time.Second << uint(attempts-1)
}

const ms = time.Millisecond

// scenario is what -once runs, on a simulated clock. What it adds up to, per queue:
//
//	emails:  enqueued 11, deduplicated 1, claimed 9, processed 4, retried 2, dead 1, reaped 1,
//	         promoted 3; latency 0.002 s, 0.05 s, 12 s, 31 s; depth ready 3, inflight 1,
//	         delayed 2, dlq 1
//	reports: enqueued 2, claimed 2, processed 1, dead 1; latency 0.7 s; depth dlq 1, others 0
var scenario = []step{
	// emails: a to e at the start, a duplicate of b, e held back for 10 s.
	{At: 0, Queue: "emails", Do: enqueue, Job: "a", Key: "welcome-1"},
	{At: 0, Queue: "emails", Do: enqueue, Job: "b", Key: "welcome-2"},
	{At: 0, Queue: "emails", Do: enqueue, Job: "b-again", Key: "welcome-2"},
	{At: 0, Queue: "emails", Do: enqueue, Job: "c"},
	{At: 0, Queue: "emails", Do: enqueue, Job: "d"},
	{At: 0, Queue: "emails", Do: enqueue, Job: "e", Delay: 10 * time.Second},
	{At: 2 * ms, Queue: "emails", Do: claimAck},           // a, 2 ms after it was created
	{At: 50 * ms, Queue: "emails", Do: claimAck},          // b, 50 ms
	{At: 400 * ms, Queue: "emails", Do: claimNack},        // c fails: retry in 1 s
	{At: 500 * ms, Queue: "emails", Do: claimAbandon},     // d's worker dies holding it
	{At: 2 * time.Second, Queue: "emails", Do: promote},   // c is due again
	{At: 2200 * ms, Queue: "emails", Do: claimNack},       // c fails again: retry in 2 s
	{At: 5 * time.Second, Queue: "emails", Do: promote},   // c is due again
	{At: 5 * time.Second, Queue: "emails", Do: claimNack}, // c's third failure: dead
	{At: 12 * time.Second, Queue: "emails", Do: promote},  // e is due
	{At: 12 * time.Second, Queue: "emails", Do: claimAck}, // e, 12 s after it was created
	{At: 31 * time.Second, Queue: "emails", Do: reap},     // d's claim expired at 30.5 s
	{At: 31 * time.Second, Queue: "emails", Do: claimAck}, // d, 31 s
	{At: 31 * time.Second, Queue: "emails", Do: enqueue, Job: "f"},
	{At: 31 * time.Second, Queue: "emails", Do: enqueue, Job: "g"},
	{At: 31 * time.Second, Queue: "emails", Do: enqueue, Job: "h"},
	{At: 31 * time.Second, Queue: "emails", Do: enqueue, Job: "i"},
	{At: 31 * time.Second, Queue: "emails", Do: enqueue, Job: "j", Delay: time.Hour},
	{At: 31 * time.Second, Queue: "emails", Do: enqueue, Job: "k", Delay: time.Hour},
	{At: 31 * time.Second, Queue: "emails", Do: claimAbandon}, // f, still in flight at the end
	// reports: one attempt only, so a failure goes straight to the dead-letter list.
	{At: 0, Queue: "reports", Do: enqueue, Job: "r1"},
	{At: 0, Queue: "reports", Do: enqueue, Job: "r2"},
	{At: 700 * ms, Queue: "reports", Do: claimAck},  // r1, 700 ms
	{At: 800 * ms, Queue: "reports", Do: claimNack}, // r2: dead
}

// runScenario plays the scenario on a clock that starts at start and moves only from step to
// step (steps run in time order, ties in the order written), then reports every queue's depth.
func runScenario(rec *StatsdRecorder, m Metrics, start time.Time) *Broker {
	clock := start
	b := NewBroker(m, func() time.Time { return clock }, scenarioVisibility, scenarioBackoff)
	for _, s := range ordered(scenario) {
		clock = start.Add(s.At)
		play(b, s)
	}
	for _, q := range b.Queues() {
		rec.Depth(q, b.Depth(q))
	}
	return b
}

func play(b *Broker, s step) {
	switch s.Do {
	case enqueue:
		job := Job{ID: s.Job, Queue: s.Queue, Key: s.Key, MaxAttempts: attempts[s.Queue]}
		b.Enqueue(job, s.Delay)
	case claimAck, claimNack, claimAbandon:
		j, ok := b.Claim(s.Queue)
		if !ok {
			return
		}
		if s.Do == claimAck {
			b.Ack(j)
		} else if s.Do == claimNack {
			b.Nack(j)
		}
	case promote:
		b.Promote(s.Queue)
	case reap:
		b.Reap(s.Queue)
	}
}

// ordered sorts steps by time, keeping the written order of steps at the same time.
func ordered(steps []step) []step {
	out := append([]step(nil), steps...)
	sort.SliceStable(out, func(i, k int) bool { return out[i].At < out[k].At })
	return out
}
