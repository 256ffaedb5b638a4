/** safetensors files written by writeSafetensors and read back by positioned reads; malformed files refused by name. */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { bfloat16Bits, float16Bits, roundToBfloat16 } from '@kvfold/fold-core';
import { SafetensorsFile, writeSafetensors } from './safetensors.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-safetensors-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

const u16 = (values: number[], bits: (x: number) => number) => new Uint8Array(Uint16Array.from(values, bits).buffer);

test('F32, F16 and BF16 tensors read back as float32, with the header the format specifies', () => {
  const path = join(root, 'three.safetensors');
  writeSafetensors(
    path,
    [
      { name: 'a', dtype: 'F32', shape: [2, 2], write: (emit) => emit(new Uint8Array(Float32Array.of(1, -2, 0.1, 1e30).buffer)) },
      { name: 'b', dtype: 'F16', shape: [3], write: (emit) => emit(u16([0.5, -65504, 2 ** -24], float16Bits)) },
      { name: 'c', dtype: 'BF16', shape: [1, 2], write: (emit) => emit(u16([3.140625, -1e30], bfloat16Bits)) },
    ],
    { format: 'pt' },
  );
  const raw = readFileSync(path);
  const headerLength = Number(raw.readBigUInt64LE(0));
  assert.equal((8 + headerLength) % 8, 0, 'the data starts 8-byte aligned');
  const header = JSON.parse(raw.subarray(8, 8 + headerLength).toString());
  assert.deepEqual(header.__metadata__, { format: 'pt' });
  assert.deepEqual(header.b, { dtype: 'F16', shape: [3], data_offsets: [16, 22] });
  const file = SafetensorsFile.open(path);
  assert.deepEqual([...file.tensors.keys()], ['a', 'b', 'c']);
  assert.deepEqual(Array.from(file.readFloat32('a')), Array.from(Float32Array.of(1, -2, 0.1, 1e30)));
  assert.deepEqual(Array.from(file.readFloat32('b')), [0.5, -65504, 2 ** -24]);
  assert.deepEqual(Array.from(file.readFloat32('c')), [3.140625, roundToBfloat16(-1e30)]);
  file.close();
});

test('a 16-bit tensor larger than one read chunk decodes across chunk boundaries', () => {
  const n = 9 * 2 ** 20 + 3; // 18 MiB of BF16: two 16 MiB reads, the second short
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) bits[i] = bfloat16Bits((i % 256) - 128); // small integers are exact in bfloat16
  const path = join(root, 'big.safetensors');
  writeSafetensors(path, [{ name: 'w', dtype: 'BF16', shape: [n], write: (emit) => emit(new Uint8Array(bits.buffer)) }]);
  const file = SafetensorsFile.open(path);
  const values = file.readFloat32('w');
  file.close();
  for (const i of [0, 1, 8 * 2 ** 20 - 1, 8 * 2 ** 20, n - 1]) assert.equal(values[i], (i % 256) - 128, `element ${i}`);
});

function rawFile(name: string, header: unknown, dataBytes: number, headerLength?: number): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const path = join(root, name);
  const fd = openSync(path, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerLength ?? json.length));
  writeSync(fd, len);
  writeSync(fd, json);
  writeSync(fd, new Uint8Array(dataBytes));
  closeSync(fd);
  return path;
}

test('malformed files are refused naming the file and the fault', () => {
  const cases: [string, string][] = [
    [rawFile('short.safetensors', {}, 0, 1 << 20), 'header length 1048576 exceeds the file'],
    [rawFile('notjson.safetensors', '{"a": ', 0), 'header is not JSON'],
    [rawFile('dtype.safetensors', { a: { dtype: 'F12', shape: [1], data_offsets: [0, 2] } }, 2), 'tensor a has unknown dtype "F12"'],
    [rawFile('span.safetensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4), /tensor a \(F32 \[2\]\) needs 8 bytes, its data_offsets span 4/.source],
    [rawFile('past.safetensors', { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), 'past the end of the file'],
  ];
  for (const [path, message] of cases) {
    assert.throws(
      () => SafetensorsFile.open(path),
      (err: Error & { code?: string }) => err.code === 'KVF_IMPORT_MALFORMED' && err.message.includes(path) && new RegExp(message).test(err.message),
      path,
    );
  }
  const tiny = join(root, 'tiny.safetensors');
  writeFileSync(tiny, 'abc');
  assert.throws(() => SafetensorsFile.open(tiny), /tiny\.safetensors is not a safetensors file: it has 3 bytes/);
});

test('an integer tensor is refused when read as a weight', () => {
  const path = rawFile('int.safetensors', { ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8);
  const file = SafetensorsFile.open(path);
  assert.throws(() => file.readFloat32('ids'), /tensor ids in .*int\.safetensors is I64; weights are read from F32, F16, BF16/);
  file.close();
});
