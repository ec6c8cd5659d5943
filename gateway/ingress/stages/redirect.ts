// A redirect route's answer (its RequestRedirect filter): after authentication, authorization and rate limits, like
// any route, and without any upstream. The path in the Location is the normalized one, with the query as received.
import type { ServerResponse } from 'node:http';
import type { NormalizedTarget } from '../../../policies/path.js';
import type { Exchange, Request, Response } from '../exchange.js';
import type { Redirect } from './route-filters.js';

export function answerRedirect(req: Request, res: Response, redirect: Redirect, target: Pick<NormalizedTarget, 'forwardPath' | 'query'>, ex: Exchange): void {
  const authority = (req.headers[':authority'] ?? req.headers.host ?? '') as string;
  ex.status = redirect.statusCode;
  // A body the client is still sending is not read: the connection cannot carry another request after it.
  if (!('stream' in req) && !req.complete) (res as ServerResponse).shouldKeepAlive = false;
  res.statusCode = redirect.statusCode;
  res.setHeader('location', redirect.location(ex.host ?? '', authority, target.forwardPath, target.query));
  res.end();
}
