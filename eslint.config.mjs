import nx from '@nx/eslint-plugin';

// Module boundaries on two axes (see docs/workspace.md):
//   type: app -> wiring|adapter|domain|util, wiring -> adapter|domain|util, adapter -> domain|util, domain -> domain|util, util -> util
//   scope: each service sees its own scope and shared; the cli wires everything.
export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  { ignores: ['**/dist', '**/node_modules', '**/.reports', '**/*.mjs', '**/*.mts', '**/*.js'] },
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: true,
          allow: [],
          depConstraints: [
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:wiring', 'type:adapter', 'type:domain', 'type:util'] },
            { sourceTag: 'type:wiring', onlyDependOnLibsWithTags: ['type:adapter', 'type:domain', 'type:util'] },
            { sourceTag: 'type:test', onlyDependOnLibsWithTags: ['type:app', 'type:wiring', 'type:adapter', 'type:domain', 'type:util'] },
            { sourceTag: 'type:adapter', onlyDependOnLibsWithTags: ['type:domain', 'type:util'] },
            { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:domain', 'type:util'] },
            { sourceTag: 'type:util', onlyDependOnLibsWithTags: ['type:util'] },
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:agent', onlyDependOnLibsWithTags: ['scope:agent', 'scope:shared'] },
            { sourceTag: 'scope:compactor', onlyDependOnLibsWithTags: ['scope:compactor', 'scope:shared'] },
            { sourceTag: 'scope:restorer', onlyDependOnLibsWithTags: ['scope:restorer', 'scope:shared'] },
            { sourceTag: 'scope:cli', onlyDependOnLibsWithTags: ['*'] },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // Indexing typed arrays and buffers inside checked bounds is the norm in the hot paths.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
];
