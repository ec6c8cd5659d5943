// A scripted egress traffic mix through a real gateway, for `portcullis suggest` on an audit file recorded from a
// real run: two workloads told apart by source address (billing on 127.0.0.2, reports on 127.0.0.3) reach HTTPS
// destinations with curl through the gateway's egress proxy. billing's allowlist is being learnt (a dry-run rule that
// lists one host); reports is enforced, so its attempt at an unlisted host is refused. The destinations all resolve
// (staticHosts) to one HTTPS server on 127.0.0.1 holding a certificate for every name.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { testPki } from './pki.js';
import { startTestIngress, type TestIngress } from './ingress.js';

export const DESTINATIONS = ['api.payments.example', 'hooks.chat.example', 'storage.example', 'files.storage.example'] as const;

/** Who fetched what: `bytes` is the size of the response body the destination sends. */
export const EGRESS_TRAFFIC: readonly { from: 'billing' | 'reports'; host: string; bytes: number }[] = [
  { from: 'billing', host: 'api.payments.example', bytes: 2_000 },
  { from: 'billing', host: 'api.payments.example', bytes: 3_500 },
  { from: 'billing', host: 'api.payments.example', bytes: 1_200 },
  { from: 'billing', host: 'hooks.chat.example', bytes: 300 },
  { from: 'reports', host: 'storage.example', bytes: 40_000 },
  { from: 'reports', host: 'files.storage.example', bytes: 90_000 },
  { from: 'reports', host: 'storage.example', bytes: 60_000 },
];

/** Attempts the traffic never made: each must be refused by the suggested allowlist. */
export const EGRESS_HELD_BACK: readonly { from: 'billing' | 'reports'; host: string }[] = [
  { from: 'billing', host: 'storage.example' },
  { from: 'reports', host: 'api.payments.example' },
  { from: 'billing', host: 'evil.example' },
];

export const SOURCE = { billing: '127.0.0.2', reports: '127.0.0.3' } as const;

export interface EgressRun {
  ing: TestIngress;
  auditFile: string;
  /** The port every destination was reached on. */
  port: number;
  /** curl's exit code and `CONNECT status/HTTP status` for each EGRESS_TRAFFIC entry, then the refused one. */
  results: { code: number; status: string }[];
  close(): Promise<void>;
}

/** Starts the gateway and the destination server (on `port`, default any free one), runs the traffic, and returns. */
export async function recordEgressRun(options: { port?: number } = {}): Promise<EgressRun> {
  const pki = testPki();
  const leaf = pki.issue({ dnsNames: [...DESTINATIONS, 'evil.example'] });
  const destination: Server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    res.end(Buffer.alloc(Number(/^\/bytes\/(\d+)$/.exec(req.url ?? '')?.[1] ?? 0), 0x61));
  });
  await new Promise<void>((resolve) => destination.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (destination.address() as AddressInfo).port;
  const ing = await startTestIngress((config, { writeFile }) => {
    writeFile('destinations-ca.pem', pki.ca.certPem);
    config.egress = {
      listener: { address: '127.0.0.1', port: 0 },
      sourceIdentities: [
        { name: 'billing', cidrs: [`${SOURCE.billing}/32`] },
        { name: 'reports', cidrs: [`${SOURCE.reports}/32`] },
      ],
      allow: [
        { name: 'billing-learning', identities: ['billing'], hosts: ['api.payments.example'], ports: [port], mode: 'dry-run', dryRunSince: '2026-11-23' },
        { name: 'reports-storage', identities: ['reports'], hosts: ['storage.example', '*.storage.example'], ports: [port] },
        { name: 'reports-ftp', identities: ['reports'], hosts: ['ftp.example'], ports: [21] },
      ],
      staticHosts: [...DESTINATIONS, 'evil.example'].map((host) => ({ host, addresses: ['127.0.0.1'] })),
      addressGuard: { allowAddresses: ['127.0.0.1'] },
      audit: { file: 'egress-audit.jsonl' },
    };
  });
  const proxy = `http://127.0.0.1:${ing.gateway.ports.get('egress')!}`;
  const ca = join(ing.dir, 'destinations-ca.pem');
  const fetchThrough = async (from: 'billing' | 'reports', host: string, bytes: number) => {
    const args = ['-sS', '-o', '/dev/null', '-w', '%{http_connect}/%{http_code}', '--max-time', '20', '--proxy', proxy, '--interface', SOURCE[from], '--cacert', ca];
    try {
      const { stdout } = await promisify(execFile)('curl', [...args, `https://${host}:${port}/bytes/${bytes}`]);
      return { code: 0, status: stdout };
    } catch (err) {
      const e = err as { code?: number; stdout?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, status: e.stdout ?? '' };
    }
  };
  const results: { code: number; status: string }[] = [];
  // One after another: the audit file then reads in the order of the script.
  for (const t of EGRESS_TRAFFIC) results.push(await fetchThrough(t.from, t.host, t.bytes));
  results.push(await fetchThrough('reports', 'hooks.chat.example', 10));
  const auditFile = join(ing.dir, 'egress-audit.jsonl');
  // Records leave for the file asynchronously (a tunnel's when it has ended): wait for one per attempt.
  const lines = () => (existsSync(auditFile) ? readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).length : 0);
  for (const until = Date.now() + 10_000; lines() < results.length && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
  return {
    ing,
    auditFile,
    port,
    results,
    async close() {
      await ing.close();
      await new Promise((resolve) => destination.close(resolve));
    },
  };
}
