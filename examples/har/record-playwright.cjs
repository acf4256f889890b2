// Records captures/har/playwright-chromium.har: headless Chromium, driven by Playwright,
// against a tiny JSON API served by this script on 127.0.0.1 (an ephemeral port), with the
// mistakes a linter should find next to correct exchanges.
//
//   npm i playwright-core            # in any folder; Chromium from `apt-get install chromium`
//   NODE_PATH=$PWD/node_modules node examples/har/record-playwright.cjs captures/har/playwright-chromium.har
//
// The server and the browser are stopped before the script exits.
const http = require('node:http');
const zlib = require('node:zlib');
const { chromium } = require('playwright-core');

const out = process.argv[2] ?? 'har-playwright-chromium.har';
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
    '1f15c4890000000d49444154789c63f8ffff3f0005fe02fea7d6a4c00000000049454e44ae426082',
  'hex',
);

function json(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const route = `${req.method} ${req.url}`;
    switch (route) {
      case 'GET /':
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        return res.end('<!doctype html><title>bookshelf</title><img src="/logo.png">');
      case 'GET /logo.png':
        res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': PNG.length, 'Cache-Control': 'max-age=60' });
        return res.end(PNG);
      case 'GET /api/books': {
        // gzip on the wire; the HAR holds the decoded JSON.
        const gz = zlib.gzipSync(JSON.stringify([{ id: 1, title: 'Dune' }, { id: 2, title: 'Emma' }]));
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Content-Length': gz.length, Server: 'bookshelf/2.3.1', Vary: 'Accept-Encoding' });
        return res.end(gz);
      }
      case 'POST /api/books':
        return json(res, 201, { id: 3, title: JSON.parse(body || '{}').title ?? null }); // no Location
      case 'POST /api/books/good':
        return json(res, 201, { id: 4 }, { Location: '/api/books/4' });
      case 'GET /api/books/42':
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        return res.end('{"error":"not found"}');
      case 'PUT /api/books/1':
        return json(res, 405, { error: 'read only' }); // no Allow
      case 'DELETE /api/books/2':
        res.writeHead(204);
        return res.end();
      case 'GET /api/login':
        return json(res, 401, { error: 'log in first' }); // no WWW-Authenticate
      case 'GET /api/limited':
        return json(res, 429, { error: 'slow down' }); // no Retry-After
      case 'POST /api/session':
        return json(res, 200, { ok: true }, { 'Set-Cookie': 'session=3f9a1c; Path=/' });
      case 'GET /api/report':
        return json(res, 200, { success: false, error: 'report generation failed' });
      case 'GET /api/cached':
        if (req.headers['if-none-match'] === '"v7"') {
          res.writeHead(304, { ETag: '"v7"', 'Cache-Control': 'no-cache' });
          return res.end();
        }
        return json(res, 200, { version: 7 }, { ETag: '"v7"', 'Cache-Control': 'no-cache' });
      default:
        return json(res, 404, { error: 'no route' });
    }
  });
});

async function main() {
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const context = await browser.newContext({ recordHar: { path: out, content: 'embed' } });
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await page.evaluate(async () => {
      const call = (url, init) => fetch(url, init).then((r) => r.text());
      const sendJson = (method, body) => ({ method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      await call('/api/books');
      await call('/api/books', sendJson('POST', { title: 'Middlemarch' }));
      await call('/api/books/good', sendJson('POST', { title: 'Persuasion' }));
      await call('/api/books/42');
      await call('/api/books/1', sendJson('PUT', { title: 'Dune II' }));
      await call('/api/books/2', { method: 'DELETE' });
      await call('/api/login');
      await call('/api/limited');
      await call('/api/session', sendJson('POST', { user: 'ada', password: 'lovelace' }));
      await call('/api/report');
      await call('/api/cached', { cache: 'no-store' });
      await call('/api/cached', { cache: 'no-store', headers: { 'If-None-Match': '"v7"' } });
    });
    await context.close(); // writes the HAR
  } finally {
    await browser.close();
    server.close();
  }
  console.log(`wrote ${out}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
