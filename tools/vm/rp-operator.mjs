/**
 * The RecoverPoint CLI for a guest (tools/vm/splitter-proof.sh --seeding, guest-tests/splitter.sh
 * phase dd-seeding). The field notes drive RecoverPoint from the host being seeded, with
 * `plink -l admin -pw admin "enable_group group=RPSyncGroup start_transfer=no"`; a QEMU guest has no
 * node to run `arraysim rp`, so it sends the same quoted command line here and this process runs
 * `node bin/arraysim.js rp <the words> --admin ADMIN` on the host, as plink runs it on the RPA.
 *
 *   node tools/vm/rp-operator.mjs --listen 127.0.0.1:PORT --admin 127.0.0.1:ADMIN
 *
 * POST /rp, body: the command line (`VERB key=value ...`). Answer: 200, text: what `arraysim rp`
 * printed (stdout, then stderr), header X-Exit: its exit status. The words are passed as arguments
 * (no shell) and must be plain `VERB` / `key=value` words; `arraysim rp` checks the verb and keys.
 * Every call is logged on stderr with its exit status.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({ options: { listen: { type: 'string' }, admin: { type: 'string' } } });
const hostPort = (s) => /^(127\.\d+\.\d+\.\d+):(\d+)$/.exec(s ?? '');
const listen = hostPort(opt.listen);
if (!listen || !hostPort(opt.admin)) {
  process.stderr.write('usage: rp-operator.mjs --listen 127.0.0.1:PORT --admin 127.0.0.1:PORT (loopback only)\n');
  process.exit(2);
}
const repo = path.resolve(import.meta.dirname, '../..');
const WORD = /^[A-Za-z0-9_.:+-]+(=[A-Za-z0-9_.:+-]+)?$/;

const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    const words = body.trim().split(/\s+/).filter(Boolean);
    if (req.method !== 'POST' || req.url !== '/rp' || !words.length || !words.every((w) => WORD.test(w))) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('POST /rp with "VERB key=value ..."\n');
      return;
    }
    execFile(process.execPath, ['bin/arraysim.js', 'rp', ...words, '--admin', opt.admin], { cwd: repo, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 2) : 0;
        process.stderr.write(`rp-operator: ${words.join(' ')} -> exit ${code}\n`);
        res.writeHead(200, { 'content-type': 'text/plain', 'x-exit': String(code) }).end(stdout + stderr);
      });
  });
});
server.listen(Number(listen[2]), listen[1], () => process.stderr.write(`rp-operator listening on ${opt.listen}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
