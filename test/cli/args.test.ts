import { describe, expect, it } from 'vitest';
import {
  parseByteSize,
  parseClusterName,
  parseDuration,
  parseEndpoints,
  parseIdList,
  parseProbability,
  UsageError,
} from '../../src/cli/args.js';

describe('parseEndpoints', () => {
  it('splits comma lists across items, normalises and dedupes', () => {
    expect(parseEndpoints(['127.0.0.1:7001,127.0.0.1:7002', ' 127.0.0.1:7001 ', '[::1]:7003'])).toEqual([
      '127.0.0.1:7001',
      '127.0.0.1:7002',
      '[::1]:7003',
    ]);
  });
  it('names the bad item and the expected form', () => {
    expect(() => parseEndpoints(['127.0.0.1:7001,localhost'])).toThrow(
      /bad endpoint "localhost": expected HOST:PORT/,
    );
    expect(() => parseEndpoints(['h:0'])).toThrow(/port must be 1–65535/);
    expect(() => parseEndpoints([' , '])).toThrow(UsageError);
  });
  it('never takes a flag-looking word as an address', () => {
    expect(() => parseEndpoints(['--endpoint'])).toThrow(UsageError);
  });
});

describe('parseClusterName', () => {
  it('accepts directory-safe names', () => {
    expect(parseClusterName('big-2.test_x')).toBe('big-2.test_x');
  });
  it.each(['', '../etc', '.hidden', 'a/b', 'x'.repeat(65)])('refuses %j', (name) => {
    expect(() => parseClusterName(name)).toThrow(/bad --name/);
  });
});

describe('parseIdList / parseProbability / parseDuration', () => {
  it('parses id lists', () => {
    expect(parseIdList('2, 3,2')).toEqual([2, 3]);
    expect(() => parseIdList('2,x')).toThrow(/bad id in --peers "x"/);
    expect(() => parseIdList(',')).toThrow(/--peers is empty/);
  });
  it('parses probabilities as fractions or percentages', () => {
    expect(parseProbability('0.3')).toBe(0.3);
    expect(parseProbability('30%')).toBeCloseTo(0.3);
    expect(parseProbability(1)).toBe(1);
    expect(() => parseProbability('1.5')).toThrow(/expected 0–1/);
    expect(() => parseProbability('abc')).toThrow(UsageError);
  });
  it('parses durations with units', () => {
    expect(parseDuration('200', 'x')).toBe(200);
    expect(parseDuration('200ms', 'x')).toBe(200);
    expect(parseDuration('1.5s', 'x')).toBe(1500);
    expect(parseDuration('2m', 'x')).toBe(120_000);
    expect(() => parseDuration('5 parsecs', '--timeout')).toThrow(/bad --timeout "5 parsecs"/);
    expect(() => parseDuration('11m', 'x', 600_000)).toThrow(/0 to 600000 ms/);
  });
});

describe('parseByteSize', () => {
  it('takes bytes, or a number with a binary unit in any case', () => {
    expect(parseByteSize('4096', '--snapshot-bytes')).toBe(4096);
    expect(parseByteSize(4096, '--snapshot-bytes')).toBe(4096);
    expect(parseByteSize('512B', '--snapshot-bytes')).toBe(512);
    expect(parseByteSize('16KiB', '--snapshot-bytes')).toBe(16 * 1024);
    expect(parseByteSize('64MiB', '--snapshot-bytes')).toBe(64 * 1024 * 1024);
    expect(parseByteSize(' 2 gib ', '--snapshot-bytes')).toBe(2 * 1024 ** 3);
  });
  it('names the flag, the value and the expected form', () => {
    for (const bad of ['', 'lots', '64MB', '1.5MiB', '-1', '64 MiB MiB', '9999999999GiB']) {
      expect(() => parseByteSize(bad, '--snapshot-bytes')).toThrow(UsageError);
    }
    expect(() => parseByteSize('64MB', '--snapshot-bytes')).toThrow(
      'bad --snapshot-bytes "64MB": expected a size of at least 1 byte, as bytes or with a unit (KiB, MiB, GiB), e.g. 64MiB',
    );
    expect(() => parseByteSize('512', '--snapshot-bytes', 1024)).toThrow(/at least 1024 bytes/);
  });
});
