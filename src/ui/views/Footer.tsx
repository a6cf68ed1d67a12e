// Key hints, taken from the keymap table (never written out by hand).
import { Box, Text } from 'ink';
import type { Theme } from '../theme.js';

export interface FooterProps {
  hints: readonly { keys: string; label: string }[];
  width: number;
  theme: Theme;
}

export function Footer(p: FooterProps) {
  // Add hints while they fit: a cut-off hint is worse than a missing one.
  const shown: { keys: string; label: string }[] = [];
  let used = 0;
  for (const h of p.hints) {
    const w = h.keys.length + 1 + h.label.length + 2;
    if (used + w > p.width) break;
    shown.push(h);
    used += w;
  }
  return (
    <Box height={1} width={p.width} overflow="hidden" flexShrink={0}>
      {shown.map((h, i) => (
        <Text key={h.label}>
          {i > 0 ? '  ' : ''}
          <Text bold color={p.theme.accent} inverse={p.theme.name === 'mono'}>
            {h.keys}
          </Text>
          <Text color={p.theme.muted}> {h.label} </Text>
        </Text>
      ))}
    </Box>
  );
}
