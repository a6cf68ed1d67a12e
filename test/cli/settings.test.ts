import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_SETTINGS,
  getSetting,
  listSettings,
  SETTING_SPECS,
  SettingsStore,
  validateStore,
} from '../../src/cli/settings.js';

describe('setting parsers refuse bad values with the valid range', () => {
  it.each([
    ['cluster-size', '0', /expected a whole number 1–15/],
    ['cluster-size', '3.5', /1–15/],
    ['tick-ms', 'fast', /1–10000/],
    ['base-port', '80', /0 \(any free port\) or 1024–65000/],
    ['theme', 'blue', /one of dark, light, mono/],
    ['recent-endpoints', 'nohost', /expected HOST:PORT/],
  ])('%s=%s', (key, value, re) => {
    expect(() => SETTING_SPECS[key]!.parse(value)).toThrow(re);
  });
  it('accepts good values', () => {
    expect(SETTING_SPECS['cluster-size']!.parse('5')).toBe(5);
    expect(SETTING_SPECS['base-port']!.parse('0')).toBe(0);
    expect(SETTING_SPECS['base-port']!.parse('7001')).toBe(7001);
    expect(SETTING_SPECS.theme!.parse('mono')).toBe('mono');
    expect(SETTING_SPECS['recent-endpoints']!.parse('')).toEqual([]);
  });
});

describe('validateStore', () => {
  it('keeps good values and reports bad ones instead of failing', () => {
    const { settings, problems } = validateStore({
      clusterSize: 99,
      tickMs: 50,
      theme: 'light',
      keys: { kill: 'Z', quit: 'not a key' },
      tokens: { '127.0.0.1:7001': 's3cret' },
      recentEndpoints: ['127.0.0.1:7001', 5],
      lastCluster: '/tmp/c',
    });
    expect(settings.clusterSize).toBe(DEFAULT_SETTINGS.clusterSize);
    expect(settings.tickMs).toBe(50);
    expect(settings.theme).toBe('light');
    expect(settings.keys).toEqual({ kill: 'Z' });
    expect(settings.tokens).toEqual({ '127.0.0.1:7001': 's3cret' });
    expect(settings.recentEndpoints).toEqual(['127.0.0.1:7001']);
    expect(settings.lastCluster).toBe('/tmp/c');
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/cluster-size.*1–15.*ignored/);
  });
  it('lists settings with tokens masked', () => {
    const { settings } = validateStore({ tokens: { 'h:1': 'secret' }, keys: { kill: 'Z,ctrl+k' } });
    const all = listSettings(settings);
    expect(all['token.h:1']).toBe('(set)');
    expect(all['keys.kill']).toBe('Z,ctrl+k');
    expect(getSetting(settings, 'token.h:1')).toBe('secret');
    expect(() => getSetting(settings, 'colour')).toThrow(/unknown setting "colour": known settings are/);
  });
});

describe('SettingsStore (conf, honouring XDG_CONFIG_HOME)', () => {
  let dir: string;
  let old: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'raftctl-settings-'));
    old = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = dir;
  });
  afterAll(() => {
    if (old === undefined) delete process.env.XDG_CONFIG_HOME;
    else process.env.XDG_CONFIG_HOME = old;
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores under $XDG_CONFIG_HOME/raftctl/config.json and round-trips', () => {
    const s = new SettingsStore();
    expect(s.path).toBe(join(dir, 'raftctl', 'config.json'));
    s.set('cluster-size', '5');
    s.set('token.127.0.0.1:7001', 's3cret');
    s.set('keys.kill', 'ctrl+k');
    s.rememberEndpoints(['a:1', 'b:2']);
    s.rememberEndpoints(['b:2', 'c:3']);
    s.rememberCluster('/x/y');
    const { settings, problems } = s.load();
    expect(problems).toEqual([]);
    expect(settings).toMatchObject({
      clusterSize: 5,
      tokens: { '127.0.0.1:7001': 's3cret' },
      keys: { kill: 'ctrl+k' },
      recentEndpoints: ['b:2', 'c:3', 'a:1'],
      lastCluster: '/x/y',
    });
    s.unset('cluster-size');
    s.unset('token.127.0.0.1:7001');
    expect(s.load().settings.clusterSize).toBe(3);
    expect(s.load().settings.tokens).toEqual({});
  });

  it('refuses unknown keys and bad values without writing', () => {
    const s = new SettingsStore();
    const before = readFileSync(s.path, 'utf8');
    expect(() => s.set('tick', '5')).toThrow(/unknown setting "tick"/);
    expect(() => s.set('tick-ms', '0')).toThrow(/1–10000/);
    expect(() => s.set('keys.kill', 'ctrl+alt+del')).toThrow(/bad key/);
    expect(() => s.set('keys.kill', 'X')).toThrow(/'X' is bound to both/);
    expect(() => s.set('keys.frobnicate', 'Z')).toThrow(/unknown console command 'frobnicate'/);
    expect(() => s.set('token.nohost', 'x')).toThrow(/HOST:PORT/);
    expect(readFileSync(s.path, 'utf8')).toBe(before);
  });

  it('survives a hand-edited bad value', () => {
    const s = new SettingsStore();
    writeFileSync(s.path, JSON.stringify({ tickMs: -1, theme: 'dark' }));
    const { settings, problems } = new SettingsStore().load();
    expect(settings.tickMs).toBe(100);
    expect(problems[0]).toMatch(/tick-ms/);
  });
});
