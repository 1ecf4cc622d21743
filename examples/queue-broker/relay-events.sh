#!/bin/sh
# The broker's events without a StatsD client: `heartwire send` checks each line and sends it
# over UDP. The functions are what a shell-driven queue (a cron job draining a spool directory,
# say) would call at each transition; the lines are the ones queue-broker sends and mapping.yml
# maps. Run as it is, the script reports what `queue-broker -once` does, in totals.
#
#   HEARTWIRE_TO=udp://127.0.0.1:8125 ./relay-events.sh      # the default target
set -eu

to="${HEARTWIRE_TO:-udp://127.0.0.1:8125}"
send() { heartwire send --to "$to" "$@"; }

# relay_count TRANSITION QUEUE [N]: N jobs (default 1) went through enqueued, deduplicated,
# claimed, processed, retried, dead, reaped or promoted.
relay_count() { send "relay.jobs.$1.$2:${3:-1}|c"; }

# relay_latency QUEUE MILLISECONDS...: end-to-end latency of acked jobs, creation to ack.
relay_latency() {
    queue="$1"
    shift
    for ms in "$@"; do send "relay.job.latency.$queue:$ms|ms"; done
}

# relay_depth QUEUE READY INFLIGHT DELAYED DLQ: how many jobs the queue holds in each state.
relay_depth() {
    send "relay.queue.depth.$1.ready:$2|g" "relay.queue.depth.$1.inflight:$3|g" \
        "relay.queue.depth.$1.delayed:$4|g" "relay.queue.depth.$1.dlq:$5|g"
}

relay_count enqueued emails 11
relay_count deduplicated emails
relay_count claimed emails 9
relay_count processed emails 4
relay_count retried emails 2
relay_count dead emails
relay_count reaped emails
relay_count promoted emails 3
relay_latency emails 2 50 12000 31000
relay_depth emails 3 1 2 1

relay_count enqueued reports 2
relay_count claimed reports 2
relay_count processed reports
relay_count dead reports
relay_latency reports 700
relay_depth reports 0 0 0 1
