import { defineConfig } from 'vitest/config';

// One test runner for the whole workspace: every project's vitest.config.mts extends this.
// Sources of other workspace packages are resolved through the "@pagevault/source" export
// condition, so tests never need a prior build. Each run leaves a JSON report in
// <project>/.reports/vitest.json; scripts/test-summary.mjs adds them up.
export default defineConfig({
  resolve: { conditions: ['@pagevault/source'] },
  ssr: { resolve: { conditions: ['@pagevault/source'] } },
  test: {
    include: ['src/**/*.spec.ts', '**/*.spec.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    environment: 'node',
    passWithNoTests: true,
    pool: 'forks',
    reporters: ['default', 'json'],
    outputFile: { json: '.reports/vitest.json' },
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
