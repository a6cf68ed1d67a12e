import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { crc32 } from 'node:zlib';
import { silentLogger } from '../src/raft/logger.js';
import { readEntryPayload } from '../src/server/storage/records.js';
import { Wal } from '../src/server/storage/wal.js';

const dir = '/tmp/rec_a/wal';
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.wal'))
  .sort();
for (let rep = 0; rep < 3; rep++) {
  let t = performance.now();
  const bufs = files.map((f) => readFileSync(`${dir}/${f}`));
  const tRead = performance.now() - t;
  t = performance.now();
  let n = 0;
  let c = 0;
  for (const b of bufs) {
    let off = 0;
    while (off + 8 <= b.length) {
      const len = b.readUInt32LE(off);
      if (len === 0) break;
      const end = off + 8 + len;
      c = crc32(new Uint8Array(b.buffer, b.byteOffset + off + 8, len), c);
      n++;
      off = (end + 7) & ~7;
    }
  }
  const tCrc = performance.now() - t;
  t = performance.now();
  const ents = [];
  for (const b of bufs) {
    let off = 0;
    while (off + 8 <= b.length) {
      const len = b.readUInt32LE(off);
      if (len === 0) break;
      const end = off + 8 + len;
      if (b[off + 8] === 2) ents.push(readEntryPayload(b, off + 9, end));
      off = (end + 7) & ~7;
    }
  }
  const tDec = performance.now() - t;
  t = performance.now();
  const { wal } = await Wal.open(dir, { logger: silentLogger });
  const tOpen = performance.now() - t;
  console.log({
    n,
    ents: ents.length,
    tRead: tRead.toFixed(0),
    tCrc: tCrc.toFixed(0),
    tDec: tDec.toFixed(0),
    tOpen: tOpen.toFixed(0),
  });
  await wal.close?.();
}
