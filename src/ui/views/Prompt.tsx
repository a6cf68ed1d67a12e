// The input line for `p` (propose), `/` (filter) and `:` (command line), and the y/N
// confirmation of dangerous commands. It replaces the status line while open.
import { Box, Text } from 'ink';
import type { PromptKind } from '../controller.js';
import type { Theme } from '../theme.js';
import { clip } from './format.js';

export interface PromptProps {
  prompt: { kind: PromptKind; text: string } | undefined;
  confirm: { question: string } | undefined;
  width: number;
  theme: Theme;
}

const LABELS: Record<PromptKind, string> = { propose: 'propose> ', filter: 'filter /', command: ':' };

export function Prompt(p: PromptProps) {
  const t = p.theme;
  if (p.confirm !== undefined) {
    return (
      <Box height={1} width={p.width} overflow="hidden" flexShrink={0}>
        <Text color={t.bad} bold inverse>
          {clip(` ${p.confirm.question} `, p.width)}
        </Text>
      </Box>
    );
  }
  if (p.prompt === undefined) return null;
  const label = LABELS[p.prompt.kind];
  // Show the end of a long input: that is where the cursor is.
  const room = Math.max(1, p.width - label.length - 1);
  const text = p.prompt.text.length > room ? `…${p.prompt.text.slice(-(room - 1))}` : p.prompt.text;
  return (
    <Box height={1} width={p.width} overflow="hidden" flexShrink={0}>
      <Text color={t.accent} bold>
        {label}
      </Text>
      <Text>{text}</Text>
      <Text inverse> </Text>
    </Box>
  );
}
