// A reader and rewriter for the data-driven test format used by etcd's Raft tests:
//
//   # comment
//   command arg key=val key=(v1,v2)
//   optional input lines
//   ----
//   expected output (up to a blank line, or between double separators)
//
// `rewrite` runs every directive and prints the file back with each output replaced by
// what the handler produced, keeping comments and blank lines where they were.

export interface Arg {
  key: string;
  vals: string[];
}

export interface Directive {
  /** 1-based line of the command, for error messages. */
  line: number;
  cmd: string;
  args: Arg[];
  /** Lines between the command and the separator. */
  input: string[];
  /** The command line and its input exactly as written. */
  source: string[];
}

export type Handler = (d: Directive) => string;

export function parseArgs(line: string): { cmd: string; args: Arg[] } {
  const tokens: string[] = [];
  // A value in parentheses may hold spaces: `voters=(1, 2)`.
  const re = /\S+=\([^)]*\)|\S+/g;
  for (const m of line.matchAll(re)) tokens.push(m[0]);
  const [cmd = '', ...rest] = tokens;
  const args = rest.map((tok): Arg => {
    const eq = tok.indexOf('=');
    if (eq < 0) return { key: tok, vals: [] };
    const key = tok.slice(0, eq);
    let val = tok.slice(eq + 1);
    if (val.startsWith('(') && val.endsWith(')')) {
      val = val.slice(1, -1);
      return {
        key,
        vals: val
          .split(',')
          .map((v) => v.trim())
          .filter((v) => v !== ''),
      };
    }
    return { key, vals: [val] };
  });
  return { cmd, args };
}

interface Block {
  kind: 'text' | 'directive';
  lines: string[];
  directive?: Directive;
}

export function parseFile(text: string): Block[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.trim() === '' || l.startsWith('#')) {
      blocks.push({ kind: 'text', lines: [l] });
      i++;
      continue;
    }
    const start = i;
    const source: string[] = [];
    while (i < lines.length && lines[i] !== '----') source.push(lines[i++]!);
    if (i >= lines.length) throw new Error(`line ${start + 1}: directive without a '----' separator`);
    i++; // the separator
    if (lines[i] === '----') {
      i++;
      while (i < lines.length && !(lines[i] === '----' && lines[i + 1] === '----')) i++;
      i += 2;
    } else {
      while (i < lines.length && lines[i] !== '') i++;
    }
    const { cmd, args } = parseArgs(source[0]!);
    blocks.push({
      kind: 'directive',
      lines: source,
      directive: { line: start + 1, cmd, args, input: source.slice(1), source },
    });
  }
  return blocks;
}

/** Formats one directive with its output the way the datadriven format writes it. */
export function formatDirective(source: string[], output: string): string {
  let out = output.endsWith('\n') ? output.slice(0, -1) : output;
  if (out === '') out = 'ok';
  const head = `${source.join('\n')}\n`;
  if (out.split('\n').some((l) => l.trim() === '')) return `${head}----\n----\n${out}\n----\n----\n`;
  return `${head}----\n${out}\n`;
}

export function rewrite(text: string, handle: Handler): string {
  let result = '';
  for (const b of parseFile(text)) {
    if (b.kind === 'text') result += `${b.lines[0]}\n`;
    else {
      let output: string;
      try {
        output = handle(b.directive!);
      } catch (err) {
        output = err instanceof Error ? err.message : String(err);
      }
      result += formatDirective(b.lines, output);
    }
  }
  return result;
}

/** Helpers for handlers. */
export function argValues(d: Directive, key: string): string[] | undefined {
  return d.args.find((a) => a.key === key)?.vals;
}

export function argInt(d: Directive, key: string): number | undefined {
  const v = argValues(d, key)?.[0];
  return v === undefined ? undefined : parseIntStrict(v);
}

export function argBool(d: Directive, key: string): boolean | undefined {
  const v = argValues(d, key)?.[0];
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new Error(`${key}: expected true or false, got ${v}`);
}

export function parseIntStrict(s: string): number {
  if (!/^\d+$/.test(s)) throw new Error(`expected a non-negative integer, got ${JSON.stringify(s)}`);
  return Number(s);
}

/** Positional arguments (those without `=`), in order. */
export function positionals(d: Directive): string[] {
  return d.args.filter((a) => a.vals.length === 0).map((a) => a.key);
}
