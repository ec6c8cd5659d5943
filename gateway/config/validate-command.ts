// `portcullis validate <file>`: load the config exactly as the gateway would, print every issue, exit 0/1.
import { redactUrls } from '../core/secrets.js';
import { ConfigError, formatIssues, loadConfigFile } from './load.js';

/** Where the command writes: `process.stdout`/`process.stderr`, or an in-memory sink in tests. */
export interface Output {
  write(text: string): unknown;
}

/** Returns the process exit code; anything but a ConfigError is a bug and propagates. */
export function runValidate(file: string, out: Output, err: Output): number {
  try {
    const { config } = loadConfigFile(file);
    const policies = config.policies?.length ?? 0;
    out.write(`ok: ${file} (${config.listeners.length} listeners, ${config.routes.length} routes, ${policies} policies)\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // CI logs keep this output: a URL's password in a refused value is shown redacted, as at start-up and reload.
    err.write(`${redactUrls(formatIssues(e.issues))}\n`);
    return 1;
  }
}
