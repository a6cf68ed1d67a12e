// One line with the result (or error) of the last command: `campaign → n3: ok (term 5)`.
import { Box, Text } from 'ink';
import type { StatusLevel } from '../controller.js';
import type { Theme } from '../theme.js';
import { clip } from './format.js';

export interface StatusLineProps {
  status: { text: string; level: StatusLevel } | undefined;
  width: number;
  theme: Theme;
}

export function StatusLine(p: StatusLineProps) {
  const t = p.theme;
  const s = p.status;
  const color =
    s === undefined
      ? t.muted
      : s.level === 'error'
        ? t.bad
        : s.level === 'ok'
          ? t.good
          : s.level === 'pending'
            ? t.warn
            : undefined;
  return (
    <Box height={1} width={p.width} overflow="hidden" flexShrink={0}>
      <Text color={color} bold={s?.level === 'error'}>
        {clip(s === undefined ? 'ready — press ? for help' : s.text, p.width)}
      </Text>
    </Box>
  );
}
