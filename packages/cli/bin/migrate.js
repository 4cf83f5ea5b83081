#!/usr/bin/env node
'use strict';
// The short form: `migrate ct1 --to host2` is `ferry migrate ct1 --to host2`.
require('../dist/main.js').main(['migrate', ...process.argv.slice(2)], 'ferry');
