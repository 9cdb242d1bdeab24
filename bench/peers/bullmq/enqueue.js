// SPDX-License-Identifier: MIT
// BullMQ peer, enqueue side: one BullMQ job per entity ({id}), added with
// Queue.addBulk in batches of 1000 (BullMQ's documented bulk path: one
// MULTI of addStandardJob script calls per batch).  Jobs are removed when
// they complete (removeOnComplete: true), BullMQ's recommended setting for
// high volume; failed ones keep the last 1000.
// usage: node enqueue.js REDIS_SOCKET QUEUE IDS_FILE
'use strict';
const fs = require('fs');
const { Queue } = require('bullmq');

async function main() {
  const [sock, name, file] = process.argv.slice(2);
  const ids = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const queue = new Queue(name, { connection: { path: sock, maxRetriesPerRequest: null } });
  const opts = { removeOnComplete: true, removeOnFail: 1000 };
  for (let i = 0; i < ids.length; i += 1000) {
    await queue.addBulk(ids.slice(i, i + 1000).map((id) => ({ name: 'e', data: { id }, opts })));
  }
  await queue.close();
  process.stdout.write(`${ids.length}\n`);
}
main().catch((e) => { console.error(e); process.exit(1); });
