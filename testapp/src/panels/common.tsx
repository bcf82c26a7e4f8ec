import { PanelPlugin, PluginType } from '@grafana/data';
import { config } from '@grafana/runtime';

/** Grafana core fills a plugin's meta from its plugin.json; ours are built in. */
export function withMeta<T extends PanelPlugin<any, any>>(plugin: T, id: string, name: string, skipDataQuery = false): T {
  plugin.meta = {
    id,
    name,
    type: PluginType.panel,
    sort: 0,
    skipDataQuery,
    module: `core:plugin/${id}`,
    baseUrl: `public/app/plugins/panel/${id}`,
    info: {
      author: { name: 'grender' },
      description: name,
      links: [],
      logos: { small: '', large: '' },
      screenshots: [],
      updated: '',
      version: config.buildInfo.version,
    },
  } as any;
  return plugin;
}

export function NoData({ width, height }: { width: number; height: number }) {
  return (
    <div style={{ width, height, display: 'flex', alignItems: 'center', justifyContent: 'center', color: config.theme2.colors.text.secondary }}>
      No data
    </div>
  );
}
