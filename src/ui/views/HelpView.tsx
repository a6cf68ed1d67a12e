// `?`: every key, rendered from the keymap table, grouped by category and flowed into as
// many columns as the terminal height requires.
import { Box, Text } from 'ink';
import { type KeyBinding, type KeyCategory, keysLabel } from '../keymap.js';
import type { Theme } from '../theme.js';
import { clip, padRight } from './format.js';

export interface HelpViewProps {
  keymap: readonly KeyBinding[];
  mode: 'live' | 'replay';
  height: number;
  width: number;
  theme: Theme;
}

const CATEGORY_TITLES: Record<KeyCategory, string> = {
  navigate: 'Navigate',
  view: 'View',
  cluster: 'Cluster',
  faults: 'Faults',
  membership: 'Membership',
  replay: 'Replay',
  console: 'Console',
};

type HelpLine =
  | { kind: 'title'; text: string }
  | { kind: 'key'; keys: string; text: string; dangerous: boolean };

export function helpLines(keymap: readonly KeyBinding[], mode: 'live' | 'replay'): HelpLine[] {
  const out: HelpLine[] = [];
  for (const cat of Object.keys(CATEGORY_TITLES) as KeyCategory[]) {
    const items = keymap.filter((b) => b.category === cat && (mode === 'replay' ? !b.live : !b.replayOnly));
    if (items.length === 0) continue;
    out.push({ kind: 'title', text: CATEGORY_TITLES[cat] });
    for (const b of items)
      out.push({ kind: 'key', keys: keysLabel(b), text: b.description, dangerous: b.dangerous });
  }
  return out;
}

export function HelpView(p: HelpViewProps) {
  const t = p.theme;
  const all = helpLines(p.keymap, p.mode);
  const rows = Math.max(1, p.height - 1);
  const cols = Math.max(1, Math.ceil(all.length / rows));
  const colWidth = Math.floor(p.width / cols);
  const columns: HelpLine[][] = [];
  for (let i = 0; i < cols; i++) columns.push(all.slice(i * rows, (i + 1) * rows));
  return (
    <Box flexDirection="column" width={p.width} height={p.height} overflow="hidden">
      <Box height={1} overflow="hidden">
        <Text bold color={t.accent}>
          {clip(
            `Keys (! asks for confirmation)   ? or Esc closes · settings: raftctl config set keys.ACTION KEY`,
            p.width,
          )}
        </Text>
      </Box>
      <Box flexDirection="row">
        {columns.map((col, ci) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: the columns are positional
          <Box key={ci} flexDirection="column" width={colWidth}>
            {col.map((l) =>
              l.kind === 'title' ? (
                <Text key={`t-${l.text}`} bold underline color={t.muted}>
                  {clip(l.text, colWidth - 1)}
                </Text>
              ) : (
                <Box key={`k-${l.keys}`} height={1} overflow="hidden">
                  <Text bold color={l.dangerous ? t.bad : t.accent}>
                    {padRight(`${l.dangerous ? '!' : ' '}${l.keys}`, 11)}
                  </Text>
                  <Text>{clip(l.text, colWidth - 12)}</Text>
                </Box>
              ),
            )}
          </Box>
        ))}
      </Box>
    </Box>
  );
}
