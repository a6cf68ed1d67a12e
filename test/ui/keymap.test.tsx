import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import {
  buildKeymap,
  CONSOLE_COMMANDS,
  duplicateKeys,
  footerHints,
  KEYMAP,
  KeymapError,
  keyName,
  keyPresses,
  keysLabel,
} from '../../src/ui/keymap.js';
import { theme } from '../../src/ui/theme.js';
import { Footer } from '../../src/ui/views/Footer.js';
import { HelpView, helpLines } from '../../src/ui/views/HelpView.js';

describe('keymap', () => {
  it('binds no key twice', () => {
    expect(duplicateKeys(KEYMAP)).toEqual([]);
  });

  it('defines every console command exactly once', () => {
    expect(KEYMAP.map((b) => b.command).sort()).toEqual([...CONSOLE_COMMANDS].sort());
  });

  it('has the keys the issue asks for', () => {
    const keyOf = (c: string) => KEYMAP.find((b) => b.command === c)!.keys;
    expect(keyOf('campaign')).toEqual(['c']);
    expect(keyOf('transfer')).toEqual(['t']);
    expect(keyOf('propose')).toEqual(['p']);
    expect(keyOf('forget-leader')).toEqual(['f']);
    expect(keyOf('isolate')).toEqual(['x']);
    expect(keyOf('heal-all')).toEqual(['X']);
    expect(keyOf('kill')).toEqual(['K']);
    expect(keyOf('stop')).toEqual(['S']);
    expect(keyOf('restart')).toEqual(['r']);
    expect(keyOf('add-node')).toEqual(['a']);
    expect(keyOf('remove-node')).toEqual(['d']);
    expect(keyOf('promote')).toEqual(['l']);
    expect(keyOf('select-up')).toEqual(['up', 'k']);
    expect(keyOf('select-down')).toEqual(['down', 'j']);
    expect(keyOf('open-node')).toEqual(['return']);
    expect(keyOf('back')).toEqual(['escape']);
    expect(keyOf('pause')).toEqual(['space']);
    expect(keyOf('filter')).toEqual(['/']);
    expect(keyOf('command-line')).toEqual([':']);
    expect(keyOf('help')).toEqual(['?']);
    expect(keyOf('quit')).toContain('q');
    expect(KEYMAP.filter((b) => b.dangerous).map((b) => b.command)).toEqual(['kill', 'stop', 'remove-node']);
  });

  it('never binds Tab (the focus manager takes it)', () => {
    expect(KEYMAP.flatMap((b) => b.keys)).not.toContain('tab');
  });

  it('applies overrides and refuses ones that bind a key twice or name no command', () => {
    const km = buildKeymap({ campaign: 'C', 'heal-all': 'H, Y' });
    expect(km.find((b) => b.command === 'campaign')!.keys).toEqual(['C']);
    expect(() => buildKeymap({ campaign: 't' })).toThrow(/'t' is bound to both campaign and transfer/);
    expect(() => buildKeymap({ nope: 'z' })).toThrow(KeymapError);
    // enter is the settings' name of return, which open-node already uses.
    expect(() => buildKeymap({ campaign: 'enter' })).toThrow(/'return'/);
  });

  it('maps Ink key events to key names', () => {
    expect(keyName('', { upArrow: true })).toBe('up');
    expect(keyName('', { return: true })).toBe('return');
    expect(keyName('', { escape: true })).toBe('escape');
    expect(keyName(' ', {})).toBe('space');
    expect(keyName('c', { ctrl: true })).toBe('ctrl+c');
    expect(keyName('X', {})).toBe('X');
    expect(keyName('', { pageUp: true })).toBe('pageup');
  });

  it('splits a chunk of keys typed faster than a read into single presses', () => {
    expect(keyPresses('2c', {})).toEqual([
      { name: '2', input: '2' },
      { name: 'c', input: 'c' },
    ]);
    expect(keyPresses('hi there\r', {}).map((k) => k.name)).toEqual([
      'h',
      'i',
      'space',
      't',
      'h',
      'e',
      'r',
      'e',
      'return',
    ]);
    expect(keyPresses('c', {})).toEqual([{ name: 'c', input: 'c' }]);
    expect(keyPresses('\r', { return: true })).toEqual([{ name: 'return', input: '\r' }]);
  });

  it('renders the help from the table, every binding with its keys', () => {
    const km = buildKeymap();
    const { lastFrame } = render(
      <HelpView keymap={km} mode="live" height={60} width={100} theme={theme('mono')} />,
    );
    const frame = lastFrame()!;
    for (const b of km.filter((x) => !x.replayOnly)) {
      expect(frame).toContain(keysLabel(b));
      expect(frame).toContain(b.description.slice(0, 25));
    }
    expect(frame).toContain('!K');
    expect(frame).toContain('!d');
    expect(frame).not.toContain('Replay faster');
  });

  it('flows the help into columns on a short terminal', () => {
    const lines = helpLines(buildKeymap(), 'live');
    const { lastFrame } = render(
      <HelpView keymap={buildKeymap()} mode="live" height={12} width={100} theme={theme('mono')} />,
    );
    expect(lastFrame()!.split('\n').length).toBeLessThanOrEqual(12);
    expect(lines.length).toBeGreaterThan(11);
  });

  it('renders replay keys (and no cluster commands) in replay help', () => {
    const { lastFrame } = render(
      <HelpView keymap={buildKeymap()} mode="replay" height={60} width={100} theme={theme('mono')} />,
    );
    expect(lastFrame()).toContain('Replay faster');
    expect(lastFrame()).not.toContain('Make the selected node campaign');
  });

  it('renders footer hints from the table and cuts them to the width', () => {
    const hints = footerHints(buildKeymap({ campaign: 'C' }), 'live');
    expect(hints).toContainEqual({ keys: 'C', label: 'campaign' });
    const { lastFrame } = render(<Footer hints={hints} width={40} theme={theme('mono')} />);
    const frame = lastFrame()!;
    expect(frame.length).toBeLessThanOrEqual(40);
    expect(frame).toContain('↑↓ select');
  });
});
