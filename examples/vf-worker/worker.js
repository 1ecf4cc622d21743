#!/usr/bin/env node
'use strict';
// The vf worker's cron pollers, reporting to heartwire instead of serving their own metrics.
//
//   node worker.js           run the eight jobs on their cron schedules (UTC) until stopped
//   node worker.js --once    run one scripted round on a virtual clock, send it, and exit
//
// Options:
//   --address HOST:PORT      heartwire's UDP listener (default $HEARTWIRE_ADDRESS or 127.0.0.1:8125)
//
// Every job runs inside instrumentPoll(), as in the seed's worker.ts; the external HTTP calls
// and scraper requests are recorded at their call sites (pollers.js). The upstreams answer from
// a script (upstream.js), so the example runs anywhere and `--once` sends the same lines every
// time: one round is a single datagram.

const { parseArgs } = require('node:util');

const { Heartwire, Metrics } = require('./heartwire');
const { pollers, PROVIDERS } = require('./pollers');
const { ROUND, Script, Upstream, VirtualClock, RealClock } = require('./upstream');

// The seed's schedules (worker.ts), read in UTC.
const SCHEDULE = {
  'viewer-poll': '* * * * *',
  'chat-export': '0 * * * *',
  'stale-session-cleanup': '45 * * * *',
  'kick-token-refresh': '30 * * * *',
  'x-follower-poll': '15 * * * *',
  'kick-subscriptions': '45 3 * * *',
  'trust-score-refresh': '17 3 * * *',
  'daily-maintenance': '22 4 * * *',
};
const OUTCOMES = ['success', 'upstream_4xx', 'http_5xx', 'cf_block', 'timeout', 'network'];

function options() {
  const { values } = parseArgs({
    options: {
      once: { type: 'boolean', default: false },
      address: { type: 'string', default: process.env.HEARTWIRE_ADDRESS || '127.0.0.1:8125' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const colon = values.address.lastIndexOf(':');
  const port = Number(values.address.slice(colon + 1));
  if (colon < 1 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`--address ${values.address}: write HOST:PORT, e.g. 127.0.0.1:8125`);
  }
  return { ...values, host: values.address.slice(0, colon), port };
}

// Counters start at 0 for every provider and outcome, so that rate() sees the first failure.
function registerScraperSeries(metrics) {
  for (const provider of PROVIDERS) {
    for (const outcome of OUTCOMES) {
      metrics.recordScraperRequest(provider, outcome, 0);
    }
  }
}

function report({ job, ok, ms, error }) {
  const took = `${(ms / 1000).toFixed(2)}s`;
  console.log(ok ? `${job} ok ${took}` : `${job} error ${took}: ${error.message}`);
}

async function once(heartwire, address) {
  const clock = new VirtualClock();
  const metrics = new Metrics(heartwire, clock, { service: 'worker' });
  registerScraperSeries(metrics);
  const jobs = pollers({ metrics, upstream: new Upstream(new Script(), clock), clock });
  for (const job of ROUND.polls) {
    report(await metrics.instrumentPoll(job, jobs[job]));
  }
  await heartwire.close();
  const { lines, datagrams } = heartwire.sent;
  console.log(`sent ${lines} lines in ${datagrams} datagram${datagrams === 1 ? '' : 's'} to ${address}`);
}

// Whether a five-field cron expression of `*`, numbers and lists matches `date` (UTC), as far
// as the seed's schedules need.
function matches(cron, date) {
  const values = [date.getUTCMinutes(), date.getUTCHours(), date.getUTCDate(), date.getUTCMonth() + 1, date.getUTCDay()];
  return cron.split(' ').every((field, i) => field === '*' || field.split(',').map(Number).includes(values[i]));
}

function live(heartwire, address) {
  const clock = new RealClock();
  const metrics = new Metrics(heartwire, clock, { service: 'worker' });
  registerScraperSeries(metrics);
  const jobs = pollers({ metrics, upstream: new Upstream(new Script({ cycle: true }), clock), clock });
  const tick = () => {
    const now = new Date();
    for (const [job, cron] of Object.entries(SCHEDULE)) {
      if (matches(cron, now)) {
        metrics.instrumentPoll(job, jobs[job]).then(report);
      }
    }
    setTimeout(tick, 60000 - (Date.now() % 60000));
  };
  console.log(`reporting to heartwire at ${address}; viewer-poll runs at the start of every minute`);
  setTimeout(tick, 60000 - (Date.now() % 60000));
}

async function main() {
  const opts = options();
  if (opts.help) {
    console.log('usage: node worker.js [--once] [--address HOST:PORT]');
    return;
  }
  // In --once mode the round is sent as one datagram at the end; live, each line as it happens.
  const heartwire = new Heartwire({ host: opts.host, port: opts.port, autoFlush: !opts.once });
  if (opts.once) {
    await once(heartwire, opts.address);
  } else {
    live(heartwire, opts.address);
  }
}

main().catch((error) => {
  console.error(error.message);
  process.exitCode = 1;
});
