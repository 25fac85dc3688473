/** Decompression of a tar of unknown compression (import, load, build contexts' callers). */
import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { InvalidParameterError } from '../../lib/errors.js';
import { peek } from '../../lib/streams.js';

/** Peeks at the first bytes and inflates gzip, zstd, bzip2 or xz; plain tar passes through. */
export async function decompressStream(input: Readable): Promise<Readable> {
  const { head: b, stream: rest } = await peek(input, 6);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return rest.pipe(zlib.createGunzip({ chunkSize: 1 << 17 }));
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) {
    const z = zlib as unknown as { createZstdDecompress?: (o?: { chunkSize?: number }) => NodeJS.ReadWriteStream };
    if (!z.createZstdDecompress) throw new InvalidParameterError('zstd compression is not supported by this Node.js');
    return rest.pipe(z.createZstdDecompress({ chunkSize: 1 << 17 })) as unknown as Readable;
  }
  if (b.length >= 3 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68) return external(rest, 'bzip2', ['-dc']);
  if (b.length >= 6 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a && b[5] === 0x00) {
    return external(rest, 'xz', ['-dc']);
  }
  return rest;
}

function external(input: Readable, cmd: string, args: string[]): Readable {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  const out = new PassThrough();
  child.on('error', (e) => out.destroy(new InvalidParameterError(`cannot decompress (${cmd}): ${e.message}`)));
  child.on('close', (code) => {
    if (code !== 0) out.destroy(new InvalidParameterError(`${cmd} exited with status ${code}`));
  });
  // EPIPE: the decompressor stopped reading (its exit status says why); any other error is the input's and must not end the output short
  pipeline(input, child.stdin!).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EPIPE') out.destroy(e); });
  child.stdout!.pipe(out);
  return out;
}


