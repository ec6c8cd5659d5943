// squid: the S4 reference. One process (-N), no cache, the same allowlist as the gateway's egress rule:
// CONNECT to EGRESS_HOST on the target's port only, the name mapped to 127.0.0.1 by a hosts file.
import fs from 'node:fs';
import path from 'node:path';
import { EGRESS_HOST } from '../material.js';
import { PROXY_CPUS, freePort, hasCommand, pinned, start, waitForPort } from '../proc.js';
import type { PeerDriver } from '../scenarios.js';

export const squid: PeerDriver = {
  name: 'squid',
  packages: ['squid'],
  missing: () => (hasCommand('squid') ? [] : ['squid']),
  scenarios: ['S4-tunnel', 'S4-new'],
  async start({ material, upstreams, accessLog }) {
    const port = await freePort();
    // squid drops to its own user after start-up; its log and pid files must stay writable then.
    const dir = path.join(material.dir, 'squid');
    fs.mkdirSync(dir, { recursive: true, mode: 0o777 });
    fs.chmodSync(dir, 0o777);
    const hosts = material.write('squid-hosts', `127.0.0.1 ${EGRESS_HOST}\n`);
    const conf = material.write(
      'squid.conf',
      `http_port 127.0.0.1:${port}
pid_filename ${dir}/squid.pid
cache_log ${dir}/cache.log
access_log ${accessLog ? 'stdio:/dev/null' : 'none'}
coredump_dir ${dir}
hosts_file ${hosts}
cache deny all
cache_mem 8 MB
shutdown_lifetime 0 seconds
acl bench_host dstdomain -n ${EGRESS_HOST}
acl bench_port port ${upstreams.egressPort}
acl CONNECT method CONNECT
http_access allow CONNECT bench_host bench_port
http_access deny all
`,
    );
    const proc = start('squid', pinned(PROXY_CPUS, ['squid', '-N', '-f', conf]));
    await waitForPort(port, proc);
    return { pid: proc.child.pid!, egressPort: port, stop: proc.stop };
  },
};
