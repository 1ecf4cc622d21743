'use strict';
// The worker's eight cron jobs and the call sites the seed instruments: the Kick channels API,
// Kick webhook subscriptions, Kick OAuth tokens, X's users/me, and scraperFetch() over the two
// scraper providers.

const PROVIDERS = ['scraperapi', 'scrapedo'];
// Outcomes after which scraperFetch() tries the next provider.
const FAILING = new Set(['http_5xx', 'cf_block', 'timeout', 'network']);
// Streamers whose Kick webhook subscriptions kick-subscriptions ensures.
const STREAMERS = ['streamer-a', 'streamer-b', 'streamer-c'];

class HttpError extends Error {
  constructor(service, endpoint, status) {
    super(`${service} ${endpoint}: HTTP ${status}`);
    this.reason = `http_${status}`;
  }
}

class ScraperUnavailable extends Error {
  constructor(target) {
    super(`every scraper provider failed for ${target}`);
    this.reason = 'scraper_unavailable';
  }
}

// The jobs by name, each an async function wrapped by instrumentPoll in worker.js.
function pollers({ metrics, upstream, clock }) {
  // One instrumented call: its outcome is recorded whether it succeeds or not; a non-2xx status
  // or no response at all throws.
  async function call(service, endpoint) {
    const started = clock.now();
    let status;
    try {
      status = await upstream.fetch(service, endpoint);
    } catch (error) {
      metrics.recordExternalHttp(service, endpoint, 'network', clock.now() - started);
      throw error;
    }
    metrics.recordExternalHttp(service, endpoint, status, clock.now() - started);
    if (status < 200 || status > 299) {
      throw new HttpError(service, endpoint, status);
    }
  }

  // scraperFetch(): round-robin over the providers, failing over on a failing outcome. A target
  // that answers 4xx through a healthy provider is an answer, not a failure.
  let turn = 0;
  async function scraperFetch(target) {
    const first = turn;
    turn = (turn + 1) % PROVIDERS.length;
    for (let i = 0; i < PROVIDERS.length; i += 1) {
      const provider = PROVIDERS[(first + i) % PROVIDERS.length];
      const outcome = await upstream.scrape(provider);
      metrics.recordScraperRequest(provider, outcome);
      if (!FAILING.has(outcome)) {
        return outcome;
      }
    }
    throw new ScraperUnavailable(target);
  }

  return {
    // pollViewerCounts: live status and viewers from the channels API, then the channel slugs,
    // which Kick only serves behind Cloudflare.
    'viewer-poll': async () => {
      await call('kick', 'channels');
      await scraperFetch('channels/slugs');
    },
    'chat-export': () => upstream.work('chat-export'),
    'stale-session-cleanup': () => upstream.work('stale-session-cleanup'),
    // getValidKickToken's refresh of near-expiry user tokens.
    'kick-token-refresh': () => call('kick-oauth', 'oauth/token'),
    // pollXFollowerCounts.
    'x-follower-poll': () => call('x', 'users/me'),
    // subscribeAllEvents: an app token, then each streamer's slug and its subscription. A
    // streamer whose slug cannot be resolved is skipped until the next run.
    'kick-subscriptions': async () => {
      await call('kick-oauth', 'oauth/token');
      for (const streamer of STREAMERS) {
        let outcome;
        try {
          outcome = await scraperFetch(`channels/${streamer}`);
        } catch (error) {
          if (!(error instanceof ScraperUnavailable)) {
            throw error;
          }
          console.warn(`kick-subscriptions: skipping ${streamer}: ${error.message}`);
          continue;
        }
        if (outcome === 'success') {
          await call('kick', 'events/subscriptions');
        }
      }
    },
    'trust-score-refresh': () => upstream.work('trust-score-refresh'),
    'daily-maintenance': () => upstream.work('daily-maintenance'),
  };
}

module.exports = { pollers, PROVIDERS, HttpError, ScraperUnavailable };
