// What Grafana core sets up at boot (public/app/app.ts) and @grafana/runtime and
// @grafana/scenes rely on. Everything here is our own code on Grafana's public APIs.
import { EventBusSrv, PanelPlugin } from '@grafana/data';
import { setAppEvents, setPluginImportUtils, setRunRequest } from '@grafana/runtime';
import { registerRuntimeDataSourceInstance } from '@grafana/runtime/unstable';

import { StandInDataSource } from './datasource';
import { initRegistries } from './registries';
import { runRequest } from './runRequest';

type PanelModule = { plugin: PanelPlugin };

/** Panel plugins, each its own chunk loaded by import() like Grafana's plugin modules. */
const PANELS: Record<string, () => Promise<PanelModule>> = {
  timeseries: () => import('./panels/timeseries'),
  stat: () => import('./panels/stat'),
  gauge: () => import('./panels/gauge'),
  bargauge: () => import('./panels/bargauge'),
  table: () => import('./panels/table'),
  barchart: () => import('./panels/barchart'),
  text: () => import('./panels/text'),
};

const loaded = new Map<string, PanelPlugin>();

function importPanelPlugin(id: string): Promise<PanelPlugin> {
  const cached = loaded.get(id);
  if (cached) {
    return Promise.resolve(cached);
  }
  // An unknown plugin is fetched from where Grafana keeps external plugins; the stand-in
  // answers 404 there, so its import() rejects like a plugin that fails to load.
  const load =
    PANELS[id] ??
    (() => import(/* @vite-ignore */ `${window.location.origin}/public/plugins/${encodeURIComponent(id)}/module.js`));
  return load().then((m) => {
    loaded.set(id, m.plugin);
    return m.plugin;
  });
}

export function bootstrap() {
  setAppEvents(new EventBusSrv());
  initRegistries();
  setRunRequest(runRequest);
  setPluginImportUtils({
    importPanelPlugin,
    getPanelPluginFromCache: (id: string) => loaded.get(id),
  });
  registerRuntimeDataSourceInstance({ dataSource: new StandInDataSource() });
}
