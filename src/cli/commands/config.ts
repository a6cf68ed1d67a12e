// `raftctl config get|set|unset|path`: the settings file (see ../settings.ts).
import type { Argv } from 'yargs';
import { getSetting, KEY_FAMILIES, listSettings, SETTING_SPECS } from '../settings.js';
import { out, printJson, settings, settingsStore } from './common.js';

function describeKeys(): string {
  const lines = Object.entries(SETTING_SPECS).map(([k, s]) => `  ${k.padEnd(17)} ${s.describe}`);
  return ['Settings:', ...lines, ...Object.values(KEY_FAMILIES).map((d) => `  ${d}`)].join('\n');
}

export function configCommand(y: Argv): Argv {
  return y.command(
    'config',
    'Read or change settings (stored in $XDG_CONFIG_HOME/raftctl/config.json)',
    (c) =>
      c
        .command(
          'get [key]',
          'Print one setting, or all',
          (a) =>
            a
              .positional('key', { type: 'string', describe: 'Setting name (default: all)' })
              .option('json', { type: 'boolean', default: false, describe: 'Print JSON' })
              .example('$0 config get', 'Every setting (tokens masked)')
              .example('$0 config get tick-ms', 'One value')
              .epilogue(describeKeys()),
          (argv) => {
            const s = settings();
            if (argv.key === undefined) {
              const all = listSettings(s);
              if (argv.json) printJson(all);
              else
                for (const [k, v] of Object.entries(all))
                  out(`${k}=${Array.isArray(v) ? v.join(',') : String(v)}`);
              return;
            }
            const v = getSetting(s, argv.key);
            if (argv.json) printJson(v ?? null);
            else if (v !== undefined) out(Array.isArray(v) ? v.join(',') : String(v));
          },
        )
        .command(
          'set <key> <value>',
          'Change a setting (bad values are refused with the valid range)',
          (a) =>
            a
              .positional('key', { type: 'string', demandOption: true, describe: 'Setting name' })
              .positional('value', { type: 'string', demandOption: true, describe: 'New value' })
              .example('$0 config set cluster-size 5', '`raftctl up` starts five nodes')
              .example('$0 config set token.10.0.0.1:2380 s3cret', 'A token for one endpoint')
              .example('$0 config set keys.kill X', 'Console: X kills the selected node')
              .epilogue(describeKeys()),
          (argv) => {
            settingsStore.set(String(argv.key), String(argv.value));
          },
        )
        .command(
          'unset <key>',
          'Return a setting to its default',
          (a) =>
            a
              .positional('key', { type: 'string', demandOption: true, describe: 'Setting name' })
              .example('$0 config unset theme', 'Back to the default theme')
              .epilogue(describeKeys()),
          (argv) => {
            settingsStore.unset(String(argv.key));
          },
        )
        .command(
          'path',
          'Print where the settings file is',
          (a) => a.example('$0 config path', '~/.config/raftctl/config.json'),
          () => out(settingsStore.path),
        )
        .demandCommand(1, 'Name a config subcommand: get, set, unset or path.')
        .example('$0 config set tick-ms 50', 'Faster clusters from `up`'),
  );
}
