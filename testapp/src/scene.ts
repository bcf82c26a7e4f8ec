// Builds scenes (the @grafana/scenes object graph Grafana's dashboards are made of) from
// the dashboard definitions, for the dashboard, solo-panel and CSV routes.
import { dateTime } from '@grafana/data';
import {
  EmbeddedScene,
  LocalValueVariable,
  QueryVariable,
  SceneByVariableRepeater,
  SceneControlsSpacer,
  SceneFlexItem,
  SceneFlexLayout,
  SceneGridItem,
  SceneGridLayout,
  SceneGridRow,
  SceneObject,
  SceneQueryRunner,
  SceneTimePicker,
  SceneTimeRange,
  SceneVariableSet,
  VariableValueSelectors,
  VizPanel,
  behaviors,
} from '@grafana/scenes';

import { DashboardDef, PanelDef, VariableDef, findPanel } from './dashboards';
import { STAND_IN_DS } from './datasource';

export interface PageParams {
  search: URLSearchParams;
  kiosk: boolean;
}

/** `from`/`to` as Grafana's URLs give them: `now-6h`, ms since the epoch, or an ISO date. */
function timeParam(v: string | null, fallback: string): string {
  if (!v) {
    return fallback;
  }
  if (/^\d{8,}$/.test(v)) {
    return dateTime(parseInt(v, 10)).toISOString();
  }
  return v;
}

function timeRange(search: URLSearchParams): SceneTimeRange {
  return new SceneTimeRange({
    from: timeParam(search.get('from'), 'now-6h'),
    to: timeParam(search.get('to'), 'now'),
    timeZone: search.get('timezone') ?? search.get('tz') ?? 'browser',
  });
}

function variable(def: VariableDef, search: URLSearchParams) {
  const fromUrl = search.getAll(`var-${def.name}`);
  const value = fromUrl.length ? fromUrl : ['$__all'];
  return new QueryVariable({
    name: def.name,
    label: def.label,
    datasource: STAND_IN_DS,
    query: { refId: 'values', alias: def.query },
    isMulti: true,
    includeAll: true,
    defaultToAll: true,
    value,
    text: value,
  });
}

function vizPanel(def: PanelDef, key = `panel-${def.id}`): VizPanel {
  return new VizPanel({
    key,
    title: def.title,
    pluginId: def.type,
    options: def.options ?? {},
    fieldConfig: (def.fieldConfig as any) ?? { defaults: {}, overrides: [] },
    $data: def.targets
      ? new SceneQueryRunner({
          datasource: STAND_IN_DS,
          queries: def.targets,
          maxDataPoints: def.maxDataPoints,
          maxDataPointsFromWidth: !def.maxDataPoints,
        })
      : undefined,
  });
}

/** A panel, or for a repeated panel one clone per value of its variable side by side. */
function panelBody(def: PanelDef): SceneObject {
  if (!def.repeat) {
    return vizPanel(def);
  }
  const name = def.repeat;
  let clone = 0;
  return new SceneByVariableRepeater({
    variableName: name,
    // A root flex layout takes only min-height from its state; its items stretch to it.
    body: new SceneFlexLayout({ direction: 'row', minHeight: '100%', children: [] }),
    getLayoutChild: (option) =>
      new SceneFlexItem({
        $variables: new SceneVariableSet({
          variables: [new LocalValueVariable({ name, value: option.value, text: option.label })],
        }),
        body: vizPanel(def, `panel-${def.id}-clone-${clone++}`),
      }),
  });
}

function gridItem(def: PanelDef): SceneGridItem {
  return new SceneGridItem({
    key: `grid-item-${def.id}`,
    x: def.x,
    y: def.y,
    width: def.w,
    height: def.h,
    isDraggable: false,
    isResizable: false,
    body: panelBody(def),
  });
}

function sceneOf(dash: DashboardDef, params: PageParams, body: SceneObject, controls: boolean): EmbeddedScene {
  return new EmbeddedScene({
    key: `dashboard-${dash.uid}`,
    $timeRange: timeRange(params.search),
    $variables: new SceneVariableSet({ variables: (dash.variables ?? []).map((v) => variable(v, params.search)) }),
    // Grafana's DashboardScene has one; EmbeddedScene has none. It keeps
    // window.__grafanaRunningQueryCount.
    $behaviors: [new behaviors.SceneQueryController()],
    controls: controls ? [new VariableValueSelectors({}), new SceneControlsSpacer(), new SceneTimePicker({})] : [],
    body,
  });
}

/** The whole dashboard (`/d/`), or one panel of it (`viewPanel`). */
export function dashboardScene(dash: DashboardDef, params: PageParams): EmbeddedScene {
  const viewPanel = Number(params.search.get('viewPanel'));
  const single = viewPanel ? findPanel(dash, viewPanel) : undefined;
  if (single) {
    return soloScene(dash, single, params, !params.kiosk);
  }
  const children = dash.items.map((item) =>
    'row' in item
      ? new SceneGridRow({
          key: `row-${item.id}`,
          title: item.title,
          y: item.y,
          isCollapsible: true,
          isCollapsed: item.collapsed,
          isDraggable: false,
          children: item.panels.map(gridItem),
        })
      : gridItem(item)
  );
  const grid = new SceneGridLayout({ isLazy: dash.lazy, isDraggable: false, isResizable: false, children });
  return sceneOf(dash, params, grid, !params.kiosk);
}

/** One panel filling the page (`/d-solo/`, `/d-csv/`, `viewPanel`). */
export function soloScene(dash: DashboardDef, def: PanelDef, params: PageParams, controls = false): EmbeddedScene {
  const body = new SceneFlexLayout({
    direction: 'column',
    children: [new SceneFlexItem({ minHeight: 50, body: panelBody(def) })],
  });
  return sceneOf(dash, params, body, controls);
}

/**
 * Applies the URL's time range, time zone and variable values to a scene that is kept, as
 * Grafana's URL sync does: only what the URL names and differs, so that an unchanged URL
 * starts no query. What the URL does not name keeps the scene's state, which may be an
 * earlier URL's.
 */
export function applyUrl(scene: EmbeddedScene, search: URLSearchParams) {
  const range = scene.state.$timeRange;
  if (range instanceof SceneTimeRange) {
    const update: Record<string, string> = {};
    const from = search.get('from');
    const to = search.get('to');
    const timezone = search.get('timezone') ?? search.get('tz');
    if (from !== null && timeParam(from, '') !== range.state.from) {
      update.from = timeParam(from, '');
    }
    if (to !== null && timeParam(to, '') !== range.state.to) {
      update.to = timeParam(to, '');
    }
    if (timezone !== null && timezone !== range.state.timeZone) {
      update.timezone = timezone;
    }
    if (Object.keys(update).length > 0) {
      range.updateFromUrl(update);
    }
  }
  const variables = scene.state.$variables;
  for (const v of variables ? variables.state.variables : []) {
    const value = search.getAll(`var-${v.state.name}`);
    if (v instanceof QueryVariable && value.length > 0 && JSON.stringify(v.state.value) !== JSON.stringify(value)) {
      v.changeValueTo(value, value);
    }
  }
}
