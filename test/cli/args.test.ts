import { describe, expect, it } from 'vitest';
import {
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
