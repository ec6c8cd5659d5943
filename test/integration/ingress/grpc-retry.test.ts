// gRPC through a retried route: a trailers-only UNAVAILABLE is retried (the client never sees it), a server
// stream passes whole, and a stream that failed after its first message is not retried. Real grpc-js on both
// sides, the upstream behind mutual TLS.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { testPki } from '../../helpers/pki.js';

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as { msg: string },
};
const method = (path: string, responseStream: boolean) => ({
  path,
  requestStream: false,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
const Service = {
  flaky: method('/portcullis.test.Retry/Flaky', false),
  list: method('/portcullis.test.Retry/List', true),
  broken: method('/portcullis.test.Retry/Broken', true),
} satisfies grpc.ServiceDefinition;

describe('gRPC through a route that retries UNAVAILABLE', () => {
  const pki = testPki();
  const calls = { flaky: new Map<string, number>(), list: 0, broken: 0 };
  let server: grpc.Server;
  let ing: TestIngress;
  let client: grpc.Client;

  before(async () => {
    const spiffeId = `spiffe://${pki.trustDomain}/ns/grpc/sa/retry`;
    const cert = pki.issue({ spiffeId, ipAddresses: ['127.0.0.1'] });
    server = new grpc.Server();
    server.addService(Service, {
      // Fails each message's first try with UNAVAILABLE (a trailers-only answer), answers the second.
      flaky: (call: grpc.ServerUnaryCall<{ msg: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const seen = (calls.flaky.get(call.request.msg) ?? 0) + 1;
        calls.flaky.set(call.request.msg, seen);
        if (seen === 1 || call.request.msg === 'always') return callback({ code: grpc.status.UNAVAILABLE, details: 'try again' });
        callback(null, { msg: `${call.request.msg} on try ${seen}` });
      },
      list: (call: grpc.ServerWritableStream<{ msg: string }, unknown>) => {
        calls.list++;
        for (let i = 0; i < 5; i++) call.write({ msg: `${call.request.msg}-${i}` });
        call.end();
      },
      // One message, then UNAVAILABLE in the trailers: too late to retry.
      broken: (call: grpc.ServerWritableStream<{ msg: string }, unknown>) => {
        calls.broken++;
        call.write({ msg: 'first' });
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'gone mid-stream' });
      },
    });
    const credentials = grpc.ServerCredentials.createSsl(Buffer.from(pki.ca.certPem), [{ cert_chain: Buffer.from(cert.certPem), private_key: Buffer.from(cert.keyPem) }], true);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
    ing = await startTestIngress((config) => {
      config.upstreams.push({ name: 'grpc', url: `https://127.0.0.1:${port}`, protocol: 'h2', tls: { spiffeId } });
      config.routes.unshift({
        name: 'grpc-retried',
        match: { path: { prefix: '/portcullis.test.Retry' } },
        upstream: 'grpc',
        // gRPC calls are POSTs: retrying them is the route's statement that its methods may run twice.
        retries: { attempts: 2, on: ['connect-failure', 'unavailable'], nonIdempotent: true, backoff: { baseMs: 1, maxMs: 5 } },
      });
      config.policies.push({ name: 'grpc-retried', action: 'ALLOW', routes: ['grpc-retried'], rules: [{}] });
    });
    client = new grpc.Client(`127.0.0.1:${ing.port}`, grpc.credentials.createSsl(Buffer.from(ing.caPem)), {
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.default_authority': 'localhost',
      // grpc-js would retry UNAVAILABLE itself only with a service config; off, so what is seen is the gateway's doing.
      'grpc.enable_retries': 0,
    });
  });
  after(async () => {
    client.close();
    await ing.close();
    // The gateway is closed: nothing is left to finish, and grpc-js's tryShutdown never calls back for a session
    // that is destroyed but has not yet emitted 'close'.
    server.forceShutdown();
  });

  const unary = (msg: string) =>
    new Promise<{ err: grpc.ServiceError | null; res?: { msg: string } }>((resolve) =>
      client.makeUnaryRequest(Service.flaky.path, json.serialize, json.deserialize, { msg }, (err, res) => resolve({ err, ...(res ? { res } : {}) })),
    );
  const stream = (path: string, msg: string) =>
    new Promise<{ messages: string[]; status: grpc.StatusObject | grpc.ServiceError }>((resolve) => {
      const messages: string[] = [];
      const call = client.makeServerStreamRequest(path, json.serialize, json.deserialize, { msg });
      call.on('data', (m: { msg: string }) => messages.push(m.msg));
      call.on('error', (status: grpc.ServiceError) => resolve({ messages, status }));
      call.on('status', (status: grpc.StatusObject) => {
        if (status.code === grpc.status.OK) resolve({ messages, status });
      });
    });

  test('a unary call the backend fails once with UNAVAILABLE succeeds on the retry; the client never sees the failure', async () => {
    const { err, res } = await unary('hello');
    assert.equal(err, null);
    assert.deepEqual(res, { msg: 'hello on try 2' });
    assert.equal(calls.flaky.get('hello'), 2);
    const line = ing.logs.find((l) => l.route === 'grpc-retried' && l.path === Service.flaky.path);
    assert.equal(line?.status, 200);
  });

  test('a call that keeps failing gets the last try\'s UNAVAILABLE after attempts + 1 tries', async () => {
    const { err } = await unary('always');
    assert.equal(err?.code, grpc.status.UNAVAILABLE);
    assert.equal(err?.details, 'try again');
    assert.equal(calls.flaky.get('always'), 3);
  });

  test('a server-streaming call through the same route gets every message, with one try', async () => {
    const { messages, status } = await stream(Service.list.path, 'item');
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(messages, ['item-0', 'item-1', 'item-2', 'item-3', 'item-4']);
    assert.equal(calls.list, 1);
  });

  test('a stream that fails after its first message is not retried: the client gets the message and the status', async () => {
    const { messages, status } = await stream(Service.broken.path, 'x');
    assert.deepEqual(messages, ['first']);
    assert.equal(status.code, grpc.status.UNAVAILABLE);
    assert.equal(calls.broken, 1);
  });
});
