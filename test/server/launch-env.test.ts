import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MALLOC_HUGE_PAGES, nodeProcessEnv } from '../../src/server/launch-env.js';

describe('nodeProcessEnv', () => {
  it("adds glibc's huge-page tunable, keeping the rest of the environment", () => {
    const env = nodeProcessEnv({ PATH: '/bin', RAFTCTL_TOKEN: 't' });
    expect(env).toEqual({ PATH: '/bin', RAFTCTL_TOKEN: 't', GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' });
    expect(MALLOC_HUGE_PAGES).toBe('glibc.malloc.hugetlb=1');
  });

  it("appends to the user's own tunables", () => {
    expect(nodeProcessEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES).toBe(
      'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1',
    );
  });

  it('leaves a hugetlb setting of the user alone, whatever its value', () => {
    const own = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0:glibc.malloc.arena_max=2' };
    expect(nodeProcessEnv(own)).toBe(own);
    expect(nodeProcessEnv({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=2' }).GLIBC_TUNABLES).toBe(
      'glibc.malloc.hugetlb=2',
    );
  });

  it('starts a process that runs with it (an unknown or unsupported tunable is ignored, not fatal)', () => {
    const out = execFileSync(
      process.execPath,
      ['-e', 'process.stdout.write(process.env.GLIBC_TUNABLES ?? "")'],
      {
        env: nodeProcessEnv({ PATH: process.env.PATH }),
      },
    );
    expect(out.toString()).toBe('glibc.malloc.hugetlb=1');
  });
});
