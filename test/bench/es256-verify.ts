// What one ES256 signature check costs through each of Node's two APIs: synchronous `crypto.verify` with a KeyObject,
// and WebCrypto (`crypto.subtle.verify`, what jose uses), awaited one at a time and with all checks in flight at once.
// Run it pinned to one core as the bench pins the gateway (docs/performance.md, "Tried and dropped"):
//   taskset -c 1 node --import tsx test/bench/es256-verify.ts
import crypto from 'node:crypto';

const CHECKS = 3_000;
const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const data = Buffer.from('x'.repeat(300));
const signature = crypto.sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
const cryptoKey = await crypto.subtle.importKey('jwk', publicKey.export({ format: 'jwk' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
const algorithm = { name: 'ECDSA', hash: 'SHA-256' };

async function measure(label: string, run: () => Promise<unknown>): Promise<void> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await run();
  const used = process.cpuUsage(cpu);
  const wallUs = ((performance.now() - start) * 1000) / CHECKS;
  console.log(`${label}: ${wallUs.toFixed(1)} µs wall, ${((used.user + used.system) / CHECKS).toFixed(1)} µs CPU per check`);
}

await measure('crypto.verify, synchronous', async () => {
  for (let i = 0; i < CHECKS; i++) crypto.verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
});
await measure('WebCrypto, one at a time', async () => {
  for (let i = 0; i < CHECKS; i++) await crypto.subtle.verify(algorithm, cryptoKey, signature, data);
});
await measure('WebCrypto, all in flight', () => Promise.all(Array.from({ length: CHECKS }, () => crypto.subtle.verify(algorithm, cryptoKey, signature, data))));
