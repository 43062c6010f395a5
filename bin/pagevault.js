#!/usr/bin/env node
// The workspace's `pagevault` command: the built CLI (npm run build, or npm run demo builds it first).
require('../apps/cli/dist/main.js');
