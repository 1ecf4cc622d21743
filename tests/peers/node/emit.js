'use strict';
// Sends heartwire's fixed script of metrics through the real hot-shots client.
//
// Usage: node emit.js hot-shots TRANSPORT ADDRESS   (the same arguments as ../python/emit.py)
//
//   TRANSPORT  udp       ADDRESS is HOST:PORT
//              unixgram  ADDRESS is a Unix datagram socket path (hot-shots `protocol: 'uds'`)
//
// Every run sends the same bytes: buffering, aggregation, client telemetry and origin detection
// are off, sampled calls are always kept, and timestamps are fixed. The receiving test knows the
// script line by line, so any change here must be mirrored there.

// hot-shots keeps a sampled call when Math.random() < rate; a draw of 0 keeps every one, so the
// `|@rate` lines reach the wire on every run.
Math.random = () => 0;

// DD_* variables add tags, change the transport or turn on telemetry: none may leak in.
for (const name of Object.keys(process.env)) {
  if (name.startsWith('DD_') || name.startsWith('DATADOG_')) {
    delete process.env[name];
  }
}

const StatsD = require('hot-shots');

// 2026-01-01T00:00:00Z: a fixed client timestamp (DogStatsD `|T`, event and check `d:`).
const TIMESTAMP = 1767225600;

function clientOptions(transport, address) {
  const options = {
    datadog: true,
    originDetection: false,
    includeDatadogTelemetry: false,
    maxBufferSize: 0,
    aggregation: false,
  };
  if (transport === 'udp') {
    const colon = address.lastIndexOf(':');
    return { ...options, protocol: 'udp', host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
  }
  if (transport === 'unixgram') {
    return { ...options, protocol: 'uds', path: address, udsGracefulErrorHandling: false };
  }
  throw new Error(`hot-shots is driven over udp or unixgram, not ${transport}`);
}

function open(options) {
  return new Promise((resolve, reject) => {
    const client = new StatsD({ ...options, errorHandler: reject });
    // Give a failed connect (a missing socket file) the chance to surface before sending.
    setImmediate(() => resolve(client));
  });
}

// Each call is awaited, so the lines leave in script order and none is lost at close.
function sent(call) {
  return new Promise((resolve, reject) => call((error) => (error ? reject(error) : resolve())));
}

async function script(client) {
  await sent((done) => client.increment('page.views', done));
  await sent((done) => client.increment('page.views', 3, ['env:prod', 'canary'], done));
  await sent((done) => client.increment('page.views', 1, 0.5, { env: 'prod' }, done));
  await sent((done) => client.decrement('jobs.pending', done));
  await sent((done) => client.gauge('queue.depth', 42, ['queue:mail'], done));
  await sent((done) => client.gauge('temperature', -3.5, done));
  await sent((done) => client.gaugeDelta('queue.depth', 5, done));
  await sent((done) => client.gaugeDelta('queue.depth', -2, done));
  await sent((done) => client.gauge('queue.depth', 40, { timestamp: TIMESTAMP, tags: ['queue:mail'] }, done));
  await sent((done) => client.timing('db.query', 12.5, done));
  await sent((done) => client.timing('db.query', 3, 0.1, done));
  await sent((done) => client.histogram('request.size', 512, ['route:/api/v1'], done));
  await sent((done) => client.distribution('request.latency', 0.25, ['region:eu-west-1'], done));
  await sent((done) => client.set('users.unique', 'carol', done));
  await sent((done) => client.increment('page.views', 1, { cardinality: 'low' }, done));
  await sent((done) => client.event(
    'Deploy finished',
    'v1.2.3 rolled out\nall green',
    {
      date_happened: TIMESTAMP,
      hostname: 'web-1',
      aggregation_key: 'deploy-42',
      priority: 'low',
      source_type_name: 'heartwire',
      alert_type: 'success',
    },
    ['env:prod'],
    done,
  ));
  await sent((done) => client.check('db.reachable', client.CHECKS.OK, undefined, undefined, done));
  await sent((done) => client.check(
    'db.reachable',
    client.CHECKS.CRITICAL,
    { date_happened: TIMESTAMP, hostname: 'web-1', message: 'connection refused' },
    ['db:primary'],
    done,
  ));
  await sent((done) => client.check('queue.reachable', client.CHECKS.UNKNOWN, undefined, undefined, done));
}

// What a client in a Kubernetes pod sends: its container id and the external data that the
// admission controller injects.
async function inPodScript(client) {
  await sent((done) => client.increment('page.views', 1, ['env:prod'], done));
  await sent((done) => client.event('Pod restarted', 'exit 137', undefined, undefined, done));
  await sent((done) => client.check('db.reachable', client.CHECKS.OK, { message: 'ok' }, undefined, done));
}

function close(client) {
  return new Promise((resolve, reject) => client.close((error) => (error ? reject(error) : resolve())));
}

async function main(argv) {
  if (argv.length !== 3 || argv[0] !== 'hot-shots') {
    throw new Error('usage: node emit.js hot-shots udp|unixgram ADDRESS');
  }
  const options = clientOptions(argv[1], argv[2]);
  const plain = await open(options);
  await script(plain);
  await close(plain);
  process.env.DD_EXTERNAL_ENV = 'it-false,cn-app,pu-4f1c';
  const inPod = await open({ ...options, containerID: '3f9a1c2b' });
  delete process.env.DD_EXTERNAL_ENV;
  await inPodScript(inPod);
  await close(inPod);
}

main(process.argv.slice(2)).catch((error) => {
  console.error(`emit.js: ${error && error.stack ? error.stack : error}`);
  process.exit(1);
});
