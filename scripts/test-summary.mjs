// Adds up the vitest JSON reports of every project (<project>/.reports/vitest.json) into the one closing
// line CI reads: "N passed, N failed" (", N skipped" when any were skipped).
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const rc = Number(process.argv[2] ?? 0);
let passed = 0, failed = 0, skipped = 0, reports = 0;
const roots = ['apps', 'libs'].flatMap((d) => (existsSync(d) ? readdirSync(d).map((p) => join(d, p)) : [])).concat(['test']);
for (const root of roots) {
  const f = join(root, '.reports', 'vitest.json');
  if (!existsSync(f)) continue;
  const r = JSON.parse(readFileSync(f, 'utf8'));
  reports++;
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A suite that failed to load (syntax error, missing service at import) has no tests but is a failure.
  failed += (r.testResults ?? []).filter((s) => s.status === 'failed' && (s.assertionResults ?? []).length === 0).length;
}
if (rc !== 0 && failed === 0) failed = 1; // lint or a target failed outside any test: never report green
console.log(`(${reports} test reports)`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
