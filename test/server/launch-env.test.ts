import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  hugePagesAdvice,
  MALLOC_HUGE_PAGES,
  nodeProcessEnv,
  transparentHugePageMode,
} from '../../src/server/launch-env.js';

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

describe('hugePagesAdvice', () => {
  it('speaks up only where asking would get huge pages and nothing asked', () => {
    expect(hugePagesAdvice({}, 'madvise')).toMatch(
      /^started without GLIBC_TUNABLES=glibc\.malloc\.hugetlb=1: /,
    );
    expect(hugePagesAdvice({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, 'madvise')).toMatch(/README\.md/);
    // Asked for (or refused) by the user, or nothing to ask: no line.
    expect(hugePagesAdvice(nodeProcessEnv({}), 'madvise')).toBeUndefined();
    expect(hugePagesAdvice({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }, 'madvise')).toBeUndefined();
    expect(hugePagesAdvice({}, 'always')).toBeUndefined();
    expect(hugePagesAdvice({}, 'never')).toBeUndefined();
    expect(hugePagesAdvice({}, undefined)).toBeUndefined();
  });

  it("reads the kernel's mode as one of its three words, or nothing", () => {
    expect([undefined, 'always', 'madvise', 'never']).toContain(transparentHugePageMode());
  });
});
