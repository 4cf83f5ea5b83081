#!/usr/bin/env node
'use strict';
/** node http-get.js URL: one GET; prints {"status":N,"length":N,"sha256":"..."} (status 0 when it failed). */
const http = require('node:http');
const { createHash } = require('node:crypto');

const request = http.get(process.argv[2], { timeout: 10_000 }, (res) => {
  const hash = createHash('sha256');
  let length = 0;
  res.on('data', (c) => {
    hash.update(c);
    length += c.length;
  });
  res.on('end', () => process.stdout.write(`${JSON.stringify({ status: res.statusCode, length, sha256: hash.digest('hex') })}\n`));
});
request.on('timeout', () => request.destroy(new Error('timeout')));
request.on('error', (err) => process.stdout.write(`${JSON.stringify({ status: 0, error: err.message })}\n`));
