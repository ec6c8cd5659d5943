// The bench's command line (`npm run bench -- …`), parsed and checked apart from run.ts so the documented command
// lines can be checked by a test without running a bench (test/unit/bench/docs-commands.test.ts).
import { parseArgs } from 'node:util';
import { parseDuration } from './report.js';
import { PEER_NAMES, SCENARIO_IDS, type PeerName, type ScenarioId } from './scenarios.js';

function parseList<T extends string>(flag: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`--${flag}: unknown ${item} (known: ${allowed.join(', ')})`);
  return items as T[];
}

export const USAGE = `Usage: npm run bench -- [--duration 10s] [--rounds 5] [--scenarios ${SCENARIO_IDS.join(',')}]
                       [--peers ${PEER_NAMES.join(',')}] [--profile [--profile-scenario S3]] [--access-log on|off] [--no-build] [--fresh] [--paired] [--workers N] [--base DIR] [--node PATH] [--out FILE]`;

export function parseBenchArgs(args: readonly string[], defaults: { node: string; out: string }) {
  const { values } = parseArgs({
    args: [...args],
    options: {
      duration: { type: 'string', default: '10s' },
      rounds: { type: 'string', default: '5' },
      scenarios: { type: 'string', default: SCENARIO_IDS.join(',') },
      peers: { type: 'string', default: PEER_NAMES.filter((p) => p !== 'portcullis-base').join(',') },
      base: { type: 'string' },
      profile: { type: 'boolean', default: false },
      'profile-scenario': { type: 'string', default: 'S3' },
      'access-log': { type: 'string', default: 'on' },
      'no-build': { type: 'boolean', default: false },
      fresh: { type: 'boolean', default: false },
      paired: { type: 'boolean', default: false },
      workers: { type: 'string', default: '1' },
      node: { type: 'string', default: defaults.node },
      out: { type: 'string', default: defaults.out },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const durationS = parseDuration(values.duration);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: expected a positive integer, got ${values.rounds}`);
  const scenarioIds: ScenarioId[] = parseList('scenarios', values.scenarios, SCENARIO_IDS);
  const peerNames: PeerName[] = parseList('peers', values.peers, PEER_NAMES);
  // --base DIR: that checkout's compiled gateway joins as `portcullis-base`, measured in the same rounds.
  if (values.base !== undefined && !peerNames.includes('portcullis-base')) peerNames.splice(1, 0, 'portcullis-base');
  if (peerNames.includes('portcullis-base') && values.base === undefined) throw new Error('--peers portcullis-base needs --base DIR (another checkout, built)');
  parseList('profile-scenario', values['profile-scenario'], SCENARIO_IDS);
  if (!['on', 'off'].includes(values['access-log'])) throw new Error(`--access-log: expected on or off, got ${values['access-log']}`);
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers: expected a positive integer, got ${values.workers}`);
  return { values, durationS, rounds, scenarioIds, peerNames, accessLog: values['access-log'] !== 'off', workers };
}
