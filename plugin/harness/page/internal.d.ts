/** Modules Grafana core imports from the @grafana packages' sources; bundle.ts maps them to the published dist files. */
declare module 'grafana-internal:i18n' {
  export function initializeI18n(options: { language?: string; ns?: string[]; module?: unknown }, regionalFormat: string): Promise<{ language: string | undefined }>;
}

declare module 'grafana-internal:runtime/PluginPage' {
  import type { PluginPageType } from '@grafana/runtime';
  export function setPluginPage(component: PluginPageType): void;
}
