'use strict';
// What the worker's upstreams answer. Kick, Kick OAuth, X and the scraper providers cannot be
// called from an example, so each call site takes its next answer from a script and takes as
// long as the script says. One round of the script is a few minutes of the worker's life in
// which every outcome of the seed's tables happens once or more; `--once` runs one round on a
// virtual clock, so that every run sends the same lines with the same durations.

// One round: the polls in order (the hourly and daily jobs once, viewer-poll four times), then
// the answer of each call, in the order the calls are made, as [status or outcome, milliseconds].
const ROUND = {
  polls: [
    'viewer-poll',
    'viewer-poll',
    'viewer-poll',
    'viewer-poll',
    'chat-export',
    'stale-session-cleanup',
    'kick-token-refresh',
    'x-follower-poll',
    'kick-subscriptions',
    'trust-score-refresh',
    'daily-maintenance',
  ],
  http: {
    // pollViewerCounts: the third poll is rate-limited.
    'kick channels': [[200, 180], [200, 210], [429, 70], [200, 220]],
    // The token refresh is refused (auth broken); getAppToken for the subscriptions works.
    'kick-oauth oauth/token': [[401, 90], [200, 110]],
    // The follower poll never gets a response: aborted after 3 s.
    'x users/me': [['network', 3000]],
    'kick events/subscriptions': [[200, 150]],
  },
  // Providers are tried round-robin, failing over to the other on a failing outcome.
  scraper: {
    scraperapi: [['success', 120], ['cf_block', 900], ['http_5xx', 400], ['success', 260]],
    scrapedo: [['success', 200], ['success', 350], ['upstream_4xx', 130], ['timeout', 8000], ['network', 40]],
  },
  // Jobs that call no instrumented upstream: how long their work takes.
  work: {
    'chat-export': 4200,
    'stale-session-cleanup': 650,
    'trust-score-refresh': 2300,
    'daily-maintenance': 7800,
  },
};

// The answers of one round, taken in order. With `cycle`, a call site whose answers are used up
// starts over (the live mode); without, running out is a bug in the script.
class Script {
  constructor({ cycle = false } = {}) {
    this.cycle = cycle;
    this.queues = new Map();
  }

  next(kind, key) {
    const id = `${kind} ${key}`;
    let queue = this.queues.get(id);
    if (!queue || queue.length === 0) {
      if (queue && !this.cycle) {
        throw new Error(`the script has no more answers for ${id}`);
      }
      const answers = ROUND[kind][key];
      if (!answers) {
        throw new Error(`the script has no answers for ${id}`);
      }
      queue = [...answers];
      this.queues.set(id, queue);
    }
    return queue.shift();
  }
}

class NetworkError extends Error {
  constructor(service, endpoint) {
    super(`${service} ${endpoint}: no response (aborted)`);
    this.reason = 'network';
  }
}

// Upstream calls that take scripted time on `clock` and give scripted answers.
class Upstream {
  constructor(script, clock) {
    this.script = script;
    this.clock = clock;
  }

  // An HTTP call: resolves to the status, or throws NetworkError when no response came.
  async fetch(service, endpoint) {
    const [status, ms] = this.script.next('http', `${service} ${endpoint}`);
    await this.clock.sleep(ms);
    if (status === 'network') {
      throw new NetworkError(service, endpoint);
    }
    return status;
  }

  // A request through a scraper provider: resolves to its outcome.
  async scrape(provider) {
    const [outcome, ms] = this.script.next('scraper', provider);
    await this.clock.sleep(ms);
    return outcome;
  }

  async work(job) {
    await this.clock.sleep(ROUND.work[job]);
  }
}

// Time that passes only when the script says so: the same durations on every run.
class VirtualClock {
  constructor() {
    this.ms = 0;
  }

  now() {
    return this.ms;
  }

  async sleep(ms) {
    this.ms += ms;
  }
}

class RealClock {
  now() {
    return performance.now();
  }

  sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}

module.exports = { ROUND, Script, Upstream, NetworkError, VirtualClock, RealClock };
