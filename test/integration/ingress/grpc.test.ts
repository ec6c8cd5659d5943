// gRPC through the terminating listener: HTTP/2 end to end, a JWT checked at the edge, and an upstream
// gRPC server that demands the gateway's client certificate. Trailers (grpc-status) must survive.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { testPki } from '../../helpers/pki.js';

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as unknown,
};
const EchoService = {
  echo: {
    path: '/portcullis.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
} satisfies grpc.ServiceDefinition;

type EchoClient = grpc.Client & {
  echo(req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: Record<string, unknown>) => void): void;
};

describe('gRPC through terminate mode with a JWT', () => {
  const pki = testPki();
  let server: grpc.Server;
  let ing: TestIngress;
  let client: EchoClient;

  before(async () => {
    const cert = pki.issue({ spiffeId: `spiffe://${pki.trustDomain}/ns/grpc/sa/echo`, ipAddresses: ['127.0.0.1'] });
    server = new grpc.Server();
    server.addService(EchoService, {
      echo: (call: grpc.ServerUnaryCall<{ msg: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        if (call.request.msg === 'fail') return callback({ code: grpc.status.FAILED_PRECONDITION, details: 'asked to fail' });
        callback(null, { msg: call.request.msg, user: call.metadata.get('x-user')[0], auth: call.metadata.get('authorization').length });
      },
    });
    const credentials = grpc.ServerCredentials.createSsl(
      Buffer.from(pki.ca.certPem),
      [{ cert_chain: Buffer.from(cert.certPem), private_key: Buffer.from(cert.keyPem) }],
      true,
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    ing = await startTestIngress((config) => {
      config.upstreams.push({
        name: 'grpc',
        url: `https://127.0.0.1:${port}`,
        protocol: 'h2',
        tls: { spiffeId: `spiffe://${pki.trustDomain}/ns/grpc/sa/echo` },
      });
      // Not h2: closing an h2 upstream client whose connect failed never resolves (upstream/clients.ts close()
      // waits on session.close of a destroyed session), which would hang this suite's teardown.
      config.upstreams.push({ name: 'grpc-down', url: 'https://127.0.0.1:1', tls: { spiffeId: `spiffe://${pki.trustDomain}/ns/grpc/sa/echo` } });
      config.rateLimits = [{ name: 'one', requests: 1, perSeconds: 3600, key: 'header:x-limit-key' }];
      config.routes.unshift(
        { name: 'grpc', match: { path: { prefix: '/portcullis.test.Echo' }, methods: ['POST'] }, upstream: 'grpc' },
        { name: 'grpc-down', match: { path: { prefix: '/portcullis.test.Down' } }, upstream: 'grpc-down' },
        { name: 'grpc-limited', match: { path: { prefix: '/portcullis.test.Limited' } }, upstream: 'grpc', rateLimit: 'one' },
      );
      config.policies.push({ name: 'grpc-open', action: 'ALLOW', routes: ['grpc-down', 'grpc-limited'], rules: [{}] });
      config.policies.push({ name: 'grpc', action: 'ALLOW', routes: ['grpc'], rules: [{ from: [{ source: { requestPrincipals: ['https://issuer.test/*'] } }] }] });
    });
    const Client = grpc.makeGenericClientConstructor(EchoService, 'Echo');
    client = new Client(`127.0.0.1:${ing.port}`, grpc.credentials.createSsl(Buffer.from(ing.caPem)), {
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.default_authority': 'localhost',
    }) as unknown as EchoClient;
  });
  after(async () => {
    client.close();
    await ing.close();
    // The gateway is closed: nothing is left to finish, and grpc-js's tryShutdown never calls back for a session
    // that is destroyed but has not yet emitted 'close'.
    server.forceShutdown();
  });

  const call = (msg: string, token?: string) =>
    new Promise<{ err: grpc.ServiceError | null; res?: Record<string, unknown> }>((resolve) => {
      const md = new grpc.Metadata();
      if (token) md.set('authorization', `Bearer ${token}`);
      client.echo({ msg }, md, (err, res) => resolve({ err, ...(res ? { res } : {}) }));
    });

  test('a call with a valid token reaches the upstream; claims arrive as metadata, the token does not', async () => {
    const { err, res } = await call('hello', await ing.jwks.sign({ sub: 'grpc-user' }));
    assert.equal(err, null);
    assert.deepEqual(res, { msg: 'hello', user: 'grpc-user', auth: 0 });
  });

  test('grpc-status in trailers passes through', async () => {
    const { err } = await call('fail', await ing.jwks.sign());
    assert.equal(err?.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(err?.details, 'asked to fail');
  });

  test('a call without a token is denied by policy: PERMISSION_DENIED (7) with the gateway\'s reason', async () => {
    const { err } = await call('hello');
    assert.equal(err?.code, grpc.status.PERMISSION_DENIED);
    assert.match(err?.details ?? '', /^access denied: /);
    assert.deepEqual(err?.metadata.get('x-portcullis-code'), ['GW_AUTHZ_DENIED']);
  });

  test('a call with an invalid token is UNAUTHENTICATED (16), with the Bearer challenge as metadata', async () => {
    const { err } = await call('hello', 'not-a-jwt');
    assert.equal(err?.code, grpc.status.UNAUTHENTICATED);
    assert.equal(err?.details, 'invalid token: token_malformed');
    assert.match(String(err?.metadata.get('www-authenticate')[0]), /^Bearer realm="portcullis", error="invalid_token"/);
  });

  const unary = async (path: string, md = new grpc.Metadata()) => {
    const other = new grpc.Client(`127.0.0.1:${ing.port}`, grpc.credentials.createSsl(Buffer.from(ing.caPem)), {
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.default_authority': 'localhost',
    });
    const err = await new Promise<grpc.ServiceError | null>((resolve) => other.makeUnaryRequest(path, json.serialize, json.deserialize, {}, md, (e) => resolve(e)));
    other.close();
    return err;
  };

  test('a method no route matches is UNIMPLEMENTED (12)', async () => {
    assert.equal((await unary('/nowhere.Svc/M'))?.code, grpc.status.UNIMPLEMENTED);
  });

  test('an unreachable upstream is UNAVAILABLE (14); a rate-limited call is RESOURCE_EXHAUSTED (8)', async () => {
    assert.equal((await unary('/portcullis.test.Down/M'))?.code, grpc.status.UNAVAILABLE);
    const md = new grpc.Metadata();
    md.set('x-limit-key', `k-${Date.now()}`);
    await unary('/portcullis.test.Limited/M', md);
    const limited = await unary('/portcullis.test.Limited/M', md);
    assert.equal(limited?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(limited?.details, 'rate limit exceeded: one');
  });

  test('on the wire: HTTP 200, trailers-only (one HEADERS frame with END_STREAM), grpc-status and grpc-message', async () => {
    const session = http2.connect(`https://127.0.0.1:${ing.port}`, { ca: ing.caPem, servername: 'localhost' });
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/portcullis.test.Echo/Echo', 'content-type': 'application/grpc+proto', te: 'trailers' });
      stream.end();
      const [headers, flags] = await new Promise<[http2.IncomingHttpHeaders, number]>((resolve) => stream.once('response', (h, f) => resolve([h, f])));
      assert.equal(headers[':status'], 200);
      assert.equal(headers['grpc-status'], '7');
      assert.equal(headers['content-type'], 'application/grpc');
      assert.match(String(headers['grpc-message']), /^access denied: no_allow_policy_matched/);
      assert.ok(flags & http2.constants.NGHTTP2_FLAG_END_STREAM, 'the response ends with its headers');
    } finally {
      session.close();
    }
  });

  test('a plain HTTP request to the same route still gets the JSON 403', async () => {
    const session = http2.connect(`https://127.0.0.1:${ing.port}`, { ca: ing.caPem, servername: 'localhost' });
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/portcullis.test.Echo/Echo', 'content-type': 'application/json' });
      stream.end();
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
      assert.equal(headers[':status'], 403);
      assert.equal(headers['grpc-status'], undefined);
      stream.resume();
    } finally {
      session.close();
    }
  });
});
