#!/usr/bin/env node
// Thin launcher for the compiled CLI (`npm run build` produces dist/).
import { main } from '../dist/gateway/cli.js';

process.exitCode = await main(process.argv.slice(2));
