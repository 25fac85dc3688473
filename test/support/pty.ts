/**
 * A pseudo-terminal for e2e tests (python3's pty module): a CLI run as a person at a terminal would run it.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, show } from './cli.js';

/**
 * Runs argv (with DOCKER_HOST=host) under a pseudo-terminal (python3's pty) of 33x101, typing `inputs` one by one once output settles (the first only after the program printed something, so nothing is typed ahead into a terminal still in cooked mode under a loaded machine);
 * an input "RESIZE" turns the terminal into 40x120 instead (the kernel signals SIGWINCH).
 */
export async function underPty(host: string, work: string, argv: string[], inputs: string[]): Promise<{ out: string; code: number }> {
  const script = join(work, 'under_pty.py');
  await writeFile(script, `
import os, pty, sys, time, select, json, fcntl, termios, struct
inputs = [s.encode() for s in json.loads(sys.argv[1])]
pid, fd = pty.fork()
if pid == 0:
    time.sleep(0.2)
    os.execvp(sys.argv[2], sys.argv[2:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 33, 101, 0, 0))
out = b''
deadline = time.time() + 30
last = time.time()
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
        last = time.time()
    elif inputs and out and time.time() - last > 0.7:
        nxt = inputs.pop(0)
        if nxt == b'RESIZE':
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 120, 0, 0))
            last = time.time()
        else:
            os.write(fd, nxt)
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({'out': out.decode('utf8', 'replace'), 'code': os.waitstatus_to_exitcode(status)}))
`);
  const r = await run('python3', [script, JSON.stringify(inputs), ...argv], { env: { DOCKER_HOST: host } });
  assert.equal(r.code, 0, show(r));
  return JSON.parse(r.stdout) as { out: string; code: number };
}
