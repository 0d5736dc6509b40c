/**
 * The harness page (page/harness.tsx) bundled with esbuild, in memory, once per process and Grafana runtime.
 * The server serves the output files at `/harness/<file>`.
 *
 * The page is Grafana's frontend stand-in, so the Grafana it stands for is the set of @grafana/* packages (and
 * the React they peer-depend on) it is bundled with. Two sets are installed: the plugin's own (the release the
 * app is built against) and the oldest release the app's grafanaDependency claims (grafana-oldest/, its own
 * pinned install with React 18), so that the built app is loaded on both ends of the range it claims.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The plugin's workspace: the @grafana packages resolve from here, as the plugin's own build does. */
export const PLUGIN_DIR = path.resolve(here, '..');

/** A set of Grafana runtime packages the page can be bundled with: the folder they resolve from. */
export interface GrafanaRuntime {
  name: 'current' | 'oldest';
  /** The page's bare imports (react, @grafana/*, rxjs, ...) resolve from here. */
  dir: string;
}

/**
 * The plugin's own @grafana/* (13.2.3, React 19), and the oldest ones grafanaDependency claims (13.0.1 with
 * React 18: 13.0.0's @grafana/ui depends on an @grafana/i18n@13.0.0 that was never published, so it cannot be
 * installed). `scripts/setup.sh` installs the oldest set with `npm ci --prefix plugin/harness/grafana-oldest`.
 */
export const GRAFANA_RUNTIMES = {
  current: { name: 'current', dir: PLUGIN_DIR },
  oldest: { name: 'oldest', dir: path.join(here, 'grafana-oldest') },
} as const satisfies Record<string, GrafanaRuntime>;

/** The installed version of a package of the runtime (for example `@grafana/runtime`, `react`). */
export function runtimeVersion(runtime: GrafanaRuntime, name: string): string {
  const require = createRequire(import.meta.url);
  let file: string;
  try {
    file = require.resolve(`${name}/package.json`, { paths: [runtime.dir] });
  } catch {
    throw new Error(`${name} is not installed for the ${runtime.name} Grafana runtime (${runtime.dir}): run bash scripts/setup.sh`);
  }
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
}

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

const bundles = new Map<string, Promise<PageBundle>>();

/** Bundles page/harness.tsx once per process and runtime (esbuild, in memory). */
export function bundlePage(runtime: GrafanaRuntime = GRAFANA_RUNTIMES.current): Promise<PageBundle> {
  const cached = bundles.get(runtime.dir);
  if (cached) return cached;
  const bundling = (async () => {
    const require = createRequire(import.meta.url);
    const packageDir = (name: string) => path.dirname(require.resolve(`${name}/package.json`, { paths: [runtime.dir] }));
    const uiDir = packageDir('@grafana/ui');
    const internal: Record<string, string> = {
      'grafana-internal:i18n': path.join(packageDir('@grafana/i18n'), 'dist/esm/i18n.mjs'),
      'grafana-internal:runtime/PluginPage': path.join(packageDir('@grafana/runtime'), 'dist/esm/components/PluginPage.mjs'),
    };
    const pageDir = path.join(here, 'page');
    const result = await esbuild.build({
      entryPoints: { harness: path.join(pageDir, 'harness.tsx') },
      absWorkingDir: here,
      bundle: true,
      write: false,
      metafile: true,
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
            // The page's own package imports come from the runtime's folder; the packages' imports of each
            // other then resolve inside that install.
            build.onResolve({ filter: /^[@a-z]/ }, async (args) => {
              if (!args.importer.startsWith(pageDir) || args.path === '@emotion/css') return undefined;
              const resolved = await build.resolve(args.path, { resolveDir: runtime.dir, kind: args.kind });
              return resolved.errors.length ? { errors: resolved.errors } : { path: resolved.path };
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
    // No module of another runtime slipped in (a package missing from the runtime's install would resolve
    // from a parent folder's node_modules, mixing two Reacts or two @grafana/ui on one page).
    const foreign = Object.keys(result.metafile.inputs)
      .map((input) => path.resolve(here, input))
      .filter((file) => !file.startsWith(`${pageDir}/`) && !insideRuntime(runtime, file));
    if (foreign.length > 0) {
      throw new Error(`the ${runtime.name} Grafana runtime's page bundles modules from elsewhere: ${foreign.slice(0, 5).join(', ')}`);
    }
    const files = new Map<string, { contents: Uint8Array; type: string }>();
    for (const file of result.outputFiles) {
      files.set(path.basename(file.path), { contents: file.contents, type: CONTENT_TYPES[path.extname(file.path)] ?? 'application/octet-stream' });
    }
    return { files };
  })();
  bundles.set(runtime.dir, bundling);
  // A failed bundle is not kept: the next call tries again.
  bundling.catch(() => bundles.delete(runtime.dir));
  return bundling;
}

/**
 * Whether a bundled file belongs to the runtime: the oldest set's files are all in its own node_modules; the
 * current set's are in the workspace's node_modules (the plugin's or the hoisted root's), never in another set.
 */
function insideRuntime(runtime: GrafanaRuntime, file: string): boolean {
  const others = Object.values(GRAFANA_RUNTIMES).filter((r) => r.dir !== runtime.dir && r.dir.startsWith(`${runtime.dir}/`));
  if (others.some((other) => file.startsWith(`${other.dir}/`))) return false;
  const own = path.join(runtime.dir, 'node_modules');
  if (file.startsWith(`${own}/`)) return true;
  // The workspace root's hoisted node_modules serve the plugin's own install only.
  return runtime.dir === PLUGIN_DIR && file.startsWith(`${path.resolve(PLUGIN_DIR, '..', 'node_modules')}/`);
}
