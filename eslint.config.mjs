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
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  prettier,
);
