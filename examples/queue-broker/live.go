package main

import (
	"math/rand"
	"strconv"
	"time"
)

// liveConfig shapes the endless simulation.
type liveConfig struct {
	queues      []string
	rate        float64       // jobs enqueued per second, over all queues
	workers     int           // jobs processed at once
	visibility  time.Duration // a claim not acked within this is reaped
	depthEvery  time.Duration // how often queue depth is reported
	maxAttempts int
}

const tick = 100 * time.Millisecond

// busy is a worker holding a job until done, then acking (ok), failing, or dying without a word.
type busy struct {
	job     *Job
	done    time.Time
	outcome action
}

// live is the state of the endless simulation, driven from one goroutine.
type live struct {
	cfg     liveConfig
	rnd     *rand.Rand
	broker  *Broker
	rec     *StatsdRecorder
	workers []*busy
	arrival float64 // jobs owed to the arrival rate, carried between ticks
	serial  int
}

// runLive runs the broker as a small production would: jobs arriving at random, some delayed,
// some duplicates; workers that mostly succeed, sometimes fail and now and then die holding a
// job; the promoter and the reaper every second; depth every depthEvery. It returns the broker
// when stop is closed, after a last depth report.
func runLive(rec *StatsdRecorder, m Metrics, cfg liveConfig, seed int64, stop <-chan struct{}) *Broker {
	rnd := rand.New(rand.NewSource(seed))
	backoff := func(attempts int) time.Duration {
		// The seed's full jitter: a wait in [0, min(10 s, 1 s × 2^(attempts-1))).
		ceiling := time.Second << uint(attempts-1)
		if ceiling > 10*time.Second || ceiling <= 0 {
			ceiling = 10 * time.Second
		}
		return time.Duration(rnd.Int63n(int64(ceiling)))
	}
	broker := NewBroker(m, time.Now, cfg.visibility, backoff)
	broker.dedupTTL = 30 * time.Second
	broker.Declare(cfg.queues...)
	l := &live{
		cfg:     cfg,
		rnd:     rnd,
		broker:  broker,
		rec:     rec,
		workers: make([]*busy, cfg.workers),
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	lastHousekeeping, lastDepth := time.Now(), time.Time{}
	for {
		select {
		case <-stop:
			l.reportDepth()
			return l.broker
		case now := <-ticker.C:
			l.arrive()
			l.work(now)
			if now.Sub(lastHousekeeping) >= time.Second {
				for _, q := range cfg.queues {
					l.broker.Promote(q)
					l.broker.Reap(q)
				}
				lastHousekeeping = now
			}
			if now.Sub(lastDepth) >= cfg.depthEvery {
				l.reportDepth()
				lastDepth = now
			}
			rec.Flush()
		}
	}
}

// arrive enqueues this tick's share of the arrival rate: one job in ten is held back a few
// seconds, one in ten carries an idempotency key that recurs now and then.
func (l *live) arrive() {
	l.arrival += l.cfg.rate * tick.Seconds()
	for ; l.arrival >= 1; l.arrival-- {
		l.serial++
		q := l.cfg.queues[l.rnd.Intn(len(l.cfg.queues))]
		j := Job{ID: q + "-" + strconv.Itoa(l.serial), Queue: q, MaxAttempts: l.cfg.maxAttempts}
		var delay time.Duration
		switch r := l.rnd.Float64(); {
		case r < 0.1:
			delay = time.Duration(2+l.rnd.Intn(4)) * time.Second
		case r < 0.2:
			// An order's enqueue, which clients may repeat: 200 orders, 30 s of dedup memory.
			j.Key = "order-" + strconv.Itoa(l.rnd.Intn(200))
		}
		l.broker.Enqueue(j, delay)
	}
}

// work finishes the jobs that are done and gives idle workers the next ready job.
func (l *live) work(now time.Time) {
	for i, w := range l.workers {
		if w != nil && now.Before(w.done) {
			continue
		}
		if w != nil {
			switch w.outcome {
			case claimAck:
				l.broker.Ack(w.job)
			case claimNack:
				l.broker.Nack(w.job)
			}
		}
		l.workers[i] = l.claim(now)
	}
}

// claim takes a job from a queue chosen at random among those with work, decides how it ends
// (90 % ok, 8 % failure, 2 % the worker dies) and how long it takes (0.2 s on average).
func (l *live) claim(now time.Time) *busy {
	start := l.rnd.Intn(len(l.cfg.queues))
	for k := range l.cfg.queues {
		q := l.cfg.queues[(start+k)%len(l.cfg.queues)]
		j, ok := l.broker.Claim(q)
		if !ok {
			continue
		}
		outcome := claimAck
		switch r := l.rnd.Float64(); {
		case r < 0.02:
			outcome = claimAbandon
		case r < 0.10:
			outcome = claimNack
		}
		took := time.Duration(l.rnd.ExpFloat64() * float64(200*time.Millisecond))
		return &busy{job: j, done: now.Add(took), outcome: outcome}
	}
	return nil
}

func (l *live) reportDepth() {
	for _, q := range l.cfg.queues {
		l.rec.Depth(q, l.broker.Depth(q))
	}
	l.rec.Flush()
}
