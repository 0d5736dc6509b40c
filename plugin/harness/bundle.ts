/**
 * The harness page (page/harness.tsx) bundled with esbuild, in memory, once per process. The server
 * serves the output files at `/harness/<file>`.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The plugin's workspace: the @grafana packages resolve from here, as the plugin's own build does. */
export const PLUGIN_DIR = path.resolve(here, '..');

export interface PageBundle {
  files: Map<string, { contents: Uint8Array; type: string }>;
}

/** Content types of the files esbuild writes (the page's script and styles, fonts, source maps). */
const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.eot': 'application/vnd.ms-fontobject',
  '.map': 'application/json',
};

let bundling: Promise<PageBundle> | undefined;

/** Bundles page/harness.tsx once per process (esbuild, in memory). */
export function bundlePage(): Promise<PageBundle> {
  bundling ??= (async () => {
    const require = createRequire(import.meta.url);
    const packageDir = (name: string) => path.dirname(require.resolve(`${name}/package.json`, { paths: [PLUGIN_DIR] }));
    const uiDir = packageDir('@grafana/ui');
    const internal: Record<string, string> = {
      'grafana-internal:i18n': path.join(packageDir('@grafana/i18n'), 'dist/esm/i18n.mjs'),
      'grafana-internal:runtime/PluginPage': path.join(packageDir('@grafana/runtime'), 'dist/esm/components/PluginPage.mjs'),
    };
    const pageDir = path.join(here, 'page');
    const result = await esbuild.build({
      entryPoints: { harness: path.join(pageDir, 'harness.tsx') },
      bundle: true,
      write: false,
      outdir: '/harness',
      publicPath: '/harness/',
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      jsx: 'automatic',
      minify: true,
      sourcemap: 'linked',
      legalComments: 'none',
      logLevel: 'silent',
      tsconfigRaw: { compilerOptions: { jsx: 'react-jsx' } },
      // What Grafana's webpack build does for the packages it bundles.
      define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
      loader: { '.svg': 'dataurl', '.png': 'dataurl', '.gif': 'dataurl', '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.eot': 'file' },
      plugins: [
        {
          name: 'grafana-internal',
          setup(build) {
            build.onResolve({ filter: /^grafana-internal:/ }, (args) => {
              const file = internal[args.path];
              return file ? { path: file } : { errors: [{ text: `no harness mapping for ${args.path}` }] };
            });
            // Grafana shares one @emotion/css with plugins: the one its @grafana/ui styles with.
            build.onResolve({ filter: /^@emotion\/css$/ }, async (args) => {
              if (!args.importer.startsWith(pageDir)) return undefined;
              const resolved = await build.resolve(args.path, { resolveDir: uiDir, kind: args.kind });
              return resolved.errors.length ? { errors: resolved.errors } : { path: resolved.path };
            });
          },
        },
      ],
    });
    const problems = result.errors.concat(result.warnings.filter((w) => w.id === 'import-is-undefined'));
    if (problems.length > 0) {
      throw new Error(`bundling the harness page failed:\n${(await esbuild.formatMessages(problems, { kind: 'error' })).join('\n')}`);
    }
    const files = new Map<string, { contents: Uint8Array; type: string }>();
    for (const file of result.outputFiles) {
      files.set(path.basename(file.path), { contents: file.contents, type: CONTENT_TYPES[path.extname(file.path)] ?? 'application/octet-stream' });
    }
    return { files };
  })();
  // A failed bundle is not kept: the next call tries again.
  bundling.catch(() => {
    bundling = undefined;
  });
  return bundling;
}
