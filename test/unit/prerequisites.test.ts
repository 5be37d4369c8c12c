import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const read = (p: string) => readFileSync(fileURLToPath(new URL(`../../${p}`, import.meta.url)), 'utf8');
const readme = read('README.md');
const ci = read('.ci/run');
const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; scripts: Record<string, string> };

/** The Quickstart's prerequisites: from its heading to the two commands. */
const prerequisites = readme.slice(readme.indexOf('## Quickstart'), readme.indexOf('npm install && npm start'));

describe("the README's prerequisites", () => {
  it('name every package .ci/run installs on a fresh machine, in the apt-get line', () => {
    const ciPackages = [...ci.matchAll(/need_apt\+=\(([^)]+)\)/g)].flatMap((m) => m[1]!.trim().split(/\s+/));
    expect(ciPackages).toEqual(expect.arrayContaining(['redis-server', 'chromium', 'prometheus', 'python3']));
    const aptLine = /apt-get install -y ([^\n#]+)/.exec(prerequisites)?.[1]?.trim().split(/\s+/);
    expect(aptLine, 'an apt-get install line in the Quickstart').toBeDefined();
    expect([...aptLine!].sort()).toEqual([...new Set(ciPackages)].sort());
  });

  it("give the Node.js version package.json's engines require", () => {
    const min = /^>=\s*(\d+\.\d+)/.exec(pkg.engines.node)?.[1];
    expect(min).toBeDefined();
    expect(prerequisites).toContain(`Node.js ≥ ${min} with npm`);
  });

  it('are followed by the two commands, and .ci/run runs the test one', () => {
    expect(readme).toMatch(/npm install && npm start[^\n]*\nnpm test/);
    expect(ci).toMatch(/^npm test$/m);
    expect(pkg.scripts.test).toBeDefined();
  });
});
