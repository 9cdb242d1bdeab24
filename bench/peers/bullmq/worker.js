// SPDX-License-Identifier: MIT
// BullMQ peer, worker side: the farm's per-entity work done the BullMQ way.
// For each job: GET BASE/item/{id} over keep-alive connections (undici Pool
// with CONCURRENCY connections, or node's http.Agent with keepAlive when
// BENCH_HTTP=http), JSON.parse, and on 200 HSET result:items:{id} title
// (a separate ioredis connection with enableAutoPipelining, ioredis's
// documented fast path); 404 is "not found", anything else throws (BullMQ
// retries per its job options).  One Worker with concurrency CONCURRENCY.
// When N jobs have completed it prints one JSON line: first_ms (first
// processor call), last_ms (Nth completion), rss_hwm_kb, and exits.
// usage: node worker.js REDIS_SOCKET QUEUE BASE_URL N CONCURRENCY
'use strict';
const fs = require('fs');
const http = require('http');
const IORedis = require('ioredis');
const { Worker } = require('bullmq');

const [sock, name, base, nStr, concStr] = process.argv.slice(2);
const N = Number(nStr);
const C = Number(concStr);
const useHttp = process.env.BENCH_HTTP === 'http';

let get;
if (useHttp) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: C });
  get = (path) => new Promise((resolve, reject) => {
    http.get(base + path, { agent }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(parts).toString() }));
      res.on('error', reject);
    }).on('error', reject);
  });
} else {
  const { Pool } = require('undici');
  const pool = new Pool(base, { connections: C, pipelining: 1 });
  get = async (path) => {
    const res = await pool.request({ path, method: 'GET' });
    return { status: res.statusCode, body: await res.body.text() };
  };
}

const results = new IORedis({ path: sock, enableAutoPipelining: true, maxRetriesPerRequest: null });
let first = 0;
let done = 0;

async function processor(job) {
  if (!first) first = Date.now();
  const id = job.data.id;
  const r = await get(`/item/${encodeURIComponent(id)}`);
  if (r.status === 404) return 'not_found';
  if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
  const doc = JSON.parse(r.body);
  await results.hset(`result:items:${id}`, 'title', String(doc.title));
  return 'updated';
}

const worker = new Worker(name, processor, {
  connection: { path: sock, maxRetriesPerRequest: null },
  concurrency: C,
});
worker.on('completed', () => {
  done++;
  if (done === N) {
    const last = Date.now();
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const hwm = Number((status.match(/VmHWM:\s+(\d+)/) || [0, 0])[1]);
    process.stdout.write(JSON.stringify({ first_ms: first, last_ms: last, rss_hwm_kb: hwm }) + '\n');
    Promise.all([worker.close(), results.quit()]).then(() => process.exit(0));
  }
});
worker.on('failed', (job, err) => { console.error(`job ${job && job.id} failed: ${err.message}`); });
