// A request's life behaves as the AbortController it replaces: the first reason stays, each listener runs once,
// a removed one never, one added after the end never; a failing listener neither stops the others nor throws into
// whoever aborted. pause and withDeadline end with it.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { pause, RequestLife, withDeadline } from '../../../gateway/ingress/request-life.js';

describe('RequestLife', () => {
  it('keeps the first reason and calls each remaining listener once', () => {
    const life = new RequestLife();
    const calls: string[] = [];
    const removed = () => calls.push('removed');
    life.addEventListener('abort', () => calls.push('a'));
    life.addEventListener('abort', removed);
    life.addEventListener('abort', () => calls.push('b'), { once: true });
    life.removeEventListener('abort', removed);
    life.throwIfAborted();
    life.abort(new Error('first'));
    life.abort(new Error('second'));
    life.addEventListener('abort', () => calls.push('late'));
    assert.deepEqual(calls, ['a', 'b']);
    assert.equal(life.aborted, true);
    assert.equal((life.reason as Error).message, 'first');
    assert.throws(() => life.throwIfAborted(), /first/);
  });

  it('reports a failing listener as an uncaught exception after the others ran, as EventTarget does', async () => {
    const life = new RequestLife();
    let after = false;
    life.addEventListener('abort', () => {
      throw new Error('listener failed');
    });
    life.addEventListener('abort', () => (after = true));
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const caught = once(process, 'uncaughtException');
    try {
      assert.doesNotThrow(() => life.abort(new Error('gone')));
      assert.equal(after, true);
      const [err] = (await caught) as [Error];
      assert.equal(err.message, 'listener failed');
    } finally {
      for (const listener of listeners) process.on('uncaughtException', listener);
    }
  });
});

describe('pause', () => {
  it('waits, or rejects with the reason as soon as the life ends', async () => {
    const life = new RequestLife();
    await pause(5, life);
    const waiting = pause(60_000, life);
    const started = performance.now();
    life.abort(new Error('client gone'));
    await assert.rejects(waiting, /client gone/);
    assert.ok(performance.now() - started < 1_000);
    await assert.rejects(pause(5, life), /client gone/);
  });
});

describe('withDeadline', () => {
  it('ends after its own deadline with a TimeoutError, its parent untouched', async () => {
    const parent = new RequestLife();
    const within = withDeadline(parent, 20);
    await assert.rejects(pause(60_000, within.life), { name: 'TimeoutError' });
    assert.equal(within.timedOut(), true);
    assert.equal(parent.aborted, false);
    within.release();
  });

  it("ends with its parent, with the parent's reason, and not by its deadline", () => {
    const parent = new RequestLife();
    const within = withDeadline(parent, 60_000);
    parent.abort(new Error('client gone'));
    assert.equal((within.life.reason as Error).message, 'client gone');
    assert.equal(within.timedOut(), false);
    within.release();
  });

  it('once released, follows neither its parent nor its deadline', async () => {
    const parent = new RequestLife();
    const within = withDeadline(parent, 10);
    within.release();
    parent.abort(new Error('client gone'));
    await pause(30, new RequestLife());
    assert.equal(within.life.aborted, false);
  });
});
