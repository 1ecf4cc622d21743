'use strict';
// A small heartwire client: the lines of heartwire's protocol (proto/PROTOCOL.md) over UDP,
// packed into datagrams. It replaces the worker's prom-client metrics module: instrumentPoll,
// the external-HTTP counter and the scraper counter become lines, and heartwire turns them into
// the same vf_* families, computes which jobs are late, and serves /metrics and /readyz.

const dgram = require('node:dgram');

// heartwire reads a datagram of up to 8192 bytes whole (listen.udp.max_datagram_bytes). The
// agent is a sidecar on loopback, so a datagram that large is never fragmented.
const MAX_DATAGRAM_BYTES = 8192;
// Job, service, endpoint and worker names, reasons and tag values: the protocol's `name` rule.
const NAME = /^[A-Za-z0-9_.:/-]{1,128}$/;

function checkName(what, name) {
  if (!NAME.test(name)) {
    throw new TypeError(`${what} ${JSON.stringify(name)} is not a heartwire name (1-128 of A-Z a-z 0-9 _ . : / -)`);
  }
  return name;
}

// Seconds for the wire from milliseconds, to the microsecond.
function seconds(ms) {
  return String(Math.round(ms * 1000) / 1e6);
}

// Lines waiting to be sent, packed into datagrams on flush().
class Heartwire {
  constructor({ host = '127.0.0.1', port = 8125, autoFlush = true } = {}) {
    this.host = host;
    this.port = port;
    this.autoFlush = autoFlush;
    this.pending = [];
    this.sent = { lines: 0, datagrams: 0 };
    this.socket = dgram.createSocket('udp4');
    // Reporting must never take the worker down: a send error is logged and the lines are lost.
    this.socket.on('error', (error) => console.error(`heartwire: ${error.message}`));
    this.socket.unref();
  }

  send(line) {
    this.pending.push(line);
    if (this.autoFlush) {
      this.flush();
    }
  }

  // Sends every pending line, as few datagrams as fit. Resolves once they are handed to the
  // kernel.
  flush() {
    const datagrams = [];
    let current = '';
    for (const line of this.pending.splice(0)) {
      const next = `${line}\n`;
      if (current && Buffer.byteLength(current + next) > MAX_DATAGRAM_BYTES) {
        datagrams.push(current);
        current = '';
      }
      current += next;
      this.sent.lines += 1;
    }
    if (current) {
      datagrams.push(current);
    }
    this.sent.datagrams += datagrams.length;
    return Promise.all(datagrams.map((payload) => new Promise((resolve) => {
      this.socket.send(payload, this.port, this.host, (error) => {
        if (error) {
          console.error(`heartwire: ${error.message}`);
        }
        resolve();
      });
    })));
  }

  async close() {
    await this.flush();
    await new Promise((resolve) => this.socket.close(resolve));
  }
}

// What the worker reports, in the words of its old metrics module.
class Metrics {
  // `service` is the constant label of every family, as initMetrics("worker") set it.
  constructor(heartwire, clock, { service }) {
    this.heartwire = heartwire;
    this.clock = clock;
    this.service = checkName('service', service);
  }

  // Runs one poll: `job.start`, then `job.ok` or `job.error` with its duration. A poll that
  // throws is logged and counted, never rethrown: the next cron tick runs it again.
  async instrumentPoll(job, poll) {
    checkName('job', job);
    const started = this.clock.now();
    this.heartwire.send(`job.start ${job}`);
    try {
      await poll();
      const took = this.clock.now() - started;
      this.heartwire.send(`job.ok ${job} ${seconds(took)}`);
      return { job, ok: true, ms: took };
    } catch (error) {
      const took = this.clock.now() - started;
      const reason = checkName('reason', error.reason || 'exception');
      this.heartwire.send(`job.error ${job} ${seconds(took)} reason=${reason}`);
      return { job, ok: false, ms: took, error };
    }
  }

  // One outbound call: its HTTP status, or `network` when no response came (DNS, TCP, TLS,
  // abort), and how long it took.
  recordExternalHttp(service, endpoint, status, ms) {
    const code = status === 'network' || status === 'timeout' ? status : String(status);
    if (!/^([1-5][0-9][0-9]|network|timeout)$/.test(code)) {
      throw new TypeError(`not an HTTP status: ${status}`);
    }
    checkName('service', service);
    checkName('endpoint', endpoint);
    this.heartwire.send(`http ${service} ${endpoint} ${code} ${seconds(ms)}`);
  }

  // One scraper-provider request: a StatsD counter with DogStatsD tags, which heartwire exports
  // as vf_scraper_requests_total{provider,outcome,service}. `increment` 0 creates the series.
  recordScraperRequest(provider, outcome, increment = 1) {
    checkName('provider', provider);
    checkName('outcome', outcome);
    this.heartwire.send(
      `vf.scraper.requests:${increment}|c|#service:${this.service},provider:${provider},outcome:${outcome}`,
    );
  }
}

module.exports = { Heartwire, Metrics, seconds, MAX_DATAGRAM_BYTES };
