// ESLint for the service code (the Grafana app in plugin/ has its own, scaffolded config). The same base
// as the plugin's: ESLint's and typescript-eslint's recommended rules, and Prettier owns the formatting.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['plugin/**', '**/node_modules/**', '.data/**', 'test-results/**', '.cache/**', '**/dist/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mjs'],
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // `_name` marks a parameter kept for a signature (an express error handler's 4th argument, say).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // graphile-worker's typed tasks are declared by merging into its global namespace (declare global).
      '@typescript-eslint/no-namespace': ['error', { allowDeclarations: true }],
      // A fake server's handler refers to the object the server is handed to, bound once it exists.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Tests read JSON answers whose shape is exactly what they assert.
    files: ['**/*.test.ts', 'testing/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier
);
