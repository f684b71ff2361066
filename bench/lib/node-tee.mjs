// The least any pull-through cache written for Node must do on a cold pull, as a yardstick for
// Cistern: one process that streams each upstream response to its client while it hashes the bytes
// (sha256) and writes them to a file, fsynced when the response ends. No metadata, no verification
// of the result, no single-flight, no error handling beyond dropping the connection: the floor,
// not a cache. Usage: node node-tee.mjs <upstream base URL> <port> <data dir>
import http from 'node:http';
import { createHash } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { request } from 'undici';

const [upstream, port, dir] = process.argv.slice(2);
if (!upstream || !port || !dir) {
  console.error('usage: node node-tee.mjs <upstream> <port> <dir>');
  process.exit(2);
}
await mkdir(dir, { recursive: true });
let files = 0;
/** Pending file writes allowed before the tee stops reading upstream. */
const MAX_PENDING = 8 << 20;

async function serve(req, res) {
  if (req.url === '/v2/' || req.url === '/v2') return res.end('{}');
  const up = await request(upstream + req.url, {
    method: req.method,
    headers: { accept: req.headers.accept ?? '*/*' },
    maxRedirections: 3,
  });
  const headers = {};
  for (const h of ['content-type', 'content-length', 'docker-content-digest']) {
    if (up.headers[h] !== undefined) headers[h] = up.headers[h];
  }
  res.writeHead(up.statusCode, headers);
  const file = await open(`${dir}/${files++}`, 'w');
  const hash = createHash('sha256');
  let writing = Promise.resolve();
  let pending = 0;
  for await (const chunk of up.body) {
    hash.update(chunk);
    pending += chunk.length;
    writing = writing.then(() => file.write(chunk)).then(() => void (pending -= chunk.length));
    if (pending > MAX_PENDING) await writing;
    if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
  }
  res.end();
  await writing;
  await file.sync();
  await file.close();
  hash.digest('hex');
}

http
  .createServer((req, res) => serve(req, res).catch(() => res.destroy()))
  .listen(Number(port), '127.0.0.1');
