#!/usr/bin/env node
// Thin launcher: runs the compiled CLI (npm run build produces dist/).
import '../dist/gateway/cli.js';
