// Command queue-broker simulates the seed's Relay job broker and reports every job transition,
// end-to-end latency and queue depth to heartwire as plain StatsD lines over UDP. heartwire's
// mapping rules (mapping.yml) turn them into the seed's Prometheus families:
// relay_jobs_<transition>_total{queue}, relay_job_latency_seconds{queue} and
// relay_queue_depth{queue,state}.
//
//	queue-broker                 # run until Ctrl-C, jobs arriving at random
//	queue-broker -once           # play a fixed scenario on a simulated clock, print it, exit
//
// Only Go's standard library is used.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "queue-broker:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("queue-broker", flag.ExitOnError)
	addr := fs.String("statsd", "127.0.0.1:8125", "heartwire's UDP listener (host:port)")
	once := fs.Bool("once", false, "play the fixed scenario on a simulated clock, print what it did, and exit")
	queues := fs.String("queues", "emails,reports", "queues to simulate, comma-separated (letters, digits, _ and -)")
	rate := fs.Float64("rate", 20, "jobs enqueued per second, over all queues")
	workers := fs.Int("workers", 8, "jobs processed at once")
	visibility := fs.Duration("visibility", 5*time.Second, "how long a claim may go unacked before the reaper takes it back")
	depthEvery := fs.Duration("depth-every", 10*time.Second, "how often queue depth is reported (the mapping's depth ttl is 1m)")
	maxAttempts := fs.Int("max-attempts", 3, "attempts before a failing job is dead")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until SIGINT or SIGTERM)")
	seed := fs.Int64("seed", time.Now().UnixNano(), "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rec, err := DialStatsd(*addr)
	if err != nil {
		return err
	}
	tally := newTally(rec)
	if *once {
		b := runScenario(rec, tally, time.Now())
		return finish(rec, out, b, tally)
	}
	cfg := liveConfig{
		queues:      strings.Split(*queues, ","),
		rate:        *rate,
		workers:     *workers,
		visibility:  *visibility,
		depthEvery:  *depthEvery,
		maxAttempts: *maxAttempts,
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	fmt.Fprintf(out, "queue-broker: %g jobs/s over %s, sending to %s; Ctrl-C stops\n", cfg.rate, *queues, *addr)
	b := runLive(rec, tally, cfg, *seed, stopSignal(*duration))
	return finish(rec, out, b, tally)
}

// finish flushes and closes the recorder, then prints what each queue went through (the same
// numbers heartwire's /metrics shows once it has read every line) and what was sent.
func finish(rec *StatsdRecorder, out io.Writer, b *Broker, t *tally) error {
	closeErr := rec.Close()
	w := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	fmt.Fprintln(w, "queue\tenqueued\tdeduplicated\tclaimed\tprocessed\tretried\tdead\treaped\tpromoted\tlatency_count\tlatency_sum_s\tready\tinflight\tdelayed\tdlq")
	for _, q := range b.Queues() {
		c := t.of(q)
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%g", q, c.enqueued, c.deduplicated,
			c.claimed, c.processed, c.retried, c.dead, c.reaped, c.promoted, c.latencies,
			c.latency.Seconds())
		for _, n := range b.Depth(q) {
			fmt.Fprintf(w, "\t%d", n)
		}
		fmt.Fprintln(w)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	lines, datagrams, failed := rec.Sent()
	fmt.Fprintf(out, "sent %d lines in %d datagrams\n", lines, datagrams)
	if failed > 0 {
		return fmt.Errorf("%d of %d datagrams were refused: is heartwire listening on that UDP address?", failed, datagrams)
	}
	return closeErr
}

// stopSignal is closed on SIGINT or SIGTERM, or after d if d > 0.
func stopSignal(d time.Duration) <-chan struct{} {
	stop := make(chan struct{})
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		var timeout <-chan time.Time
		if d > 0 {
			timeout = time.After(d)
		}
		select {
		case <-signals:
		case <-timeout:
		}
		close(stop)
	}()
	return stop
}

func (c liveConfig) validate() error {
	for _, q := range c.queues {
		if !validQueue(q) {
			return fmt.Errorf("queue name %q: use letters, digits, _ and - (a queue is one component of a StatsD name)", q)
		}
	}
	switch {
	case c.rate <= 0:
		return errors.New("-rate must be above 0")
	case c.workers < 1:
		return errors.New("-workers must be at least 1")
	case c.visibility <= 0 || c.depthEvery <= 0:
		return errors.New("-visibility and -depth-every must be above 0")
	case c.maxAttempts < 1:
		return errors.New("-max-attempts must be at least 1")
	}
	return nil
}

// validQueue accepts names that are one dot-free StatsD name component, so that the mapping's
// `*` captures the whole queue name.
func validQueue(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}
