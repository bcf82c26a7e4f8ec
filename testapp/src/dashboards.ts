// The test dashboards, by uid. Colours and panel ids are mirrored as constants in
// crates/grafana-stub/src/lib.rs; keep both in step.
import { FieldColorModeId } from '@grafana/data';

import { StandInQuery } from './datasource';

/** Fixed series colours (the stand-in's tests count these pixels). */
export const COLORS = {
  seriesA: '#19c34a', // green
  seriesB: '#d81bd8', // magenta
  seriesC: '#1f78ff', // blue
  bars: '#00d5ff', // cyan
};

export interface PanelDef {
  id: number;
  type: string;
  title: string;
  x: number;
  y: number;
  w: number;
  h: number;
  targets?: StandInQuery[];
  options?: Record<string, unknown>;
  fieldConfig?: { defaults: Record<string, unknown>; overrides: any[] };
  /** Points per series (default: one per pixel of the panel's width). */
  maxDataPoints?: number;
  /** Repeat this panel for every value of the variable (horizontally). */
  repeat?: string;
}

export interface RowDef {
  row: true;
  id: number;
  title: string;
  y: number;
  collapsed: boolean;
  panels: PanelDef[];
}

export interface VariableDef {
  name: string;
  label: string;
  /** Query sent to the stand-in (its `values` scenario). */
  query: string;
}

export interface DashboardDef {
  uid: string;
  title: string;
  items: Array<PanelDef | RowDef>;
  variables?: VariableDef[];
  /** Grafana's lazy grid (panels render and query only when in view). */
  lazy: boolean;
}

const fixed = (color: string) => ({ mode: FieldColorModeId.Fixed, fixedColor: color });

function byRefId(refId: string, color: string) {
  return { matcher: { id: 'byFrameRefID', options: refId }, properties: [{ id: 'color', value: fixed(color) }] };
}

/** Three series, A green, B magenta, C blue. */
function threeSeries(): Pick<PanelDef, 'targets' | 'fieldConfig'> {
  return {
    targets: [
      { refId: 'A', alias: 'cpu', seed: 1 },
      { refId: 'B', alias: 'memory', seed: 2 },
      { refId: 'C', alias: 'disk', seed: 3 },
    ],
    fieldConfig: {
      defaults: { unit: 'percent', min: 0, max: 100 },
      overrides: [byRefId('A', COLORS.seriesA), byRefId('B', COLORS.seriesB), byRefId('C', COLORS.seriesC)],
    },
  };
}

const TEXT = `# Text panel

Grafana renders **markdown**: 中文 日本語 한국어 😀

- CJK: 漢字テスト 한글 테스트
- Emoji: 😀 🚀 ✅`;

function panel(kind: string, id: number, x: number, y: number, w: number, h: number, title?: string): PanelDef {
  const base = { id, x, y, w, h };
  switch (kind) {
    case 'timeseries':
      return { ...base, type: 'timeseries', title: title ?? 'Time series', ...threeSeries() };
    case 'stat':
      return {
        ...base,
        type: 'stat',
        title: title ?? 'Stat',
        targets: [{ refId: 'A', alias: 'requests', seed: 4 }],
        fieldConfig: { defaults: { unit: 'reqps', color: fixed(COLORS.seriesA) }, overrides: [] },
      };
    case 'gauge':
      return {
        ...base,
        type: 'gauge',
        title: title ?? 'Gauge',
        targets: [{ refId: 'A', alias: 'load', seed: 5 }],
        fieldConfig: { defaults: { unit: 'percent', min: 0, max: 100 }, overrides: [] },
      };
    case 'bargauge':
      return { ...base, type: 'bargauge', title: title ?? 'Bar gauge', ...threeSeries() };
    case 'table':
      return {
        ...base,
        type: 'table',
        title: title ?? 'Table',
        targets: [{ refId: 'A', scenario: 'table', seed: 6 }],
        fieldConfig: { defaults: {}, overrides: [] },
      };
    case 'barchart':
      return {
        ...base,
        type: 'barchart',
        title: title ?? 'Bar chart',
        targets: [{ refId: 'A', alias: 'errors', seed: 7 }],
        maxDataPoints: 24,
        fieldConfig: { defaults: { unit: 'short', min: 0, color: fixed(COLORS.bars) }, overrides: [] },
      };
    case 'text':
      return { ...base, type: 'text', title: title ?? 'Text 中文 😀', options: { content: TEXT } };
    default:
      throw new Error(`unknown panel kind ${kind}`);
  }
}

const kinds: DashboardDef = {
  uid: 'kinds',
  title: 'Kinds: one panel of each kind',
  lazy: true,
  items: [
    panel('timeseries', 1, 0, 0, 12, 8),
    panel('stat', 2, 12, 0, 6, 8),
    panel('gauge', 3, 18, 0, 6, 8),
    panel('bargauge', 4, 0, 8, 8, 8),
    panel('table', 5, 8, 8, 8, 8),
    panel('barchart', 6, 16, 8, 8, 8),
    panel('text', 7, 0, 16, 24, 6),
  ],
};

const rows: DashboardDef = {
  uid: 'rows',
  title: 'Rows: expanded and collapsed',
  lazy: true,
  items: [
    { row: true, id: 100, title: 'Expanded row', y: 0, collapsed: false, panels: [panel('timeseries', 1, 0, 1, 12, 8), panel('stat', 2, 12, 1, 12, 8)] },
    { row: true, id: 101, title: 'Collapsed row', y: 9, collapsed: true, panels: [panel('timeseries', 3, 0, 10, 12, 8), panel('table', 4, 12, 10, 12, 8)] },
    { row: true, id: 102, title: 'Second expanded row', y: 10, collapsed: false, panels: [panel('bargauge', 5, 0, 11, 24, 7)] },
  ],
};

const repeat: DashboardDef = {
  uid: 'repeat',
  title: 'Repeat: a panel per server',
  lazy: true,
  variables: [{ name: 'server', label: 'Server', query: 'servers' }],
  items: [
    { ...panel('timeseries', 1, 0, 0, 24, 8, 'Server $server'), repeat: 'server' },
    {
      ...panel('text', 2, 0, 8, 24, 4, 'Selected servers'),
      options: { content: 'Servers: **${server}** (中文 😀)' },
    },
  ],
};

const broken: DashboardDef = {
  uid: 'broken',
  title: 'Broken: failing data source and plugin',
  lazy: true,
  items: [
    panel('timeseries', 1, 0, 0, 12, 8, 'Works'),
    { ...panel('timeseries', 2, 12, 0, 12, 8, 'Data source fails'), targets: [{ refId: 'A', alias: 'x', fail: true }] },
    { ...panel('timeseries', 3, 0, 8, 12, 8, 'Plugin fails to load'), type: 'grender-missing-panel' },
    panel('stat', 4, 12, 8, 12, 8, 'Also works'),
  ],
};

const slow: DashboardDef = {
  uid: 'slow',
  title: 'Slow: one slow query',
  lazy: true,
  items: [
    panel('timeseries', 1, 0, 0, 12, 8, 'Fast'),
    {
      ...panel('timeseries', 2, 12, 0, 12, 8, 'Slow query'),
      targets: threeSeries().targets!.map((t) => ({ ...t, slow: true })),
    },
    panel('stat', 3, 0, 8, 24, 6, 'Fast stat'),
  ],
};

const FORTY_KINDS = ['timeseries', 'stat', 'bargauge', 'table', 'barchart'];
const forty: DashboardDef = {
  uid: 'forty',
  title: 'Forty panels (taller than 10,000 px)',
  lazy: true,
  items: Array.from({ length: 40 }, (_, i) => {
    const id = i + 1;
    return panel(FORTY_KINDS[i % FORTY_KINDS.length], id, (i % 2) * 12, Math.floor(i / 2) * 16, 12, 16, `Panel ${id}`);
  }),
};

export const DASHBOARDS: Record<string, DashboardDef> = { kinds, rows, repeat, broken, slow, forty };

/** Every panel of a dashboard, rows included, by id. */
export function findPanel(dash: DashboardDef, id: number): PanelDef | undefined {
  for (const item of dash.items) {
    if ('row' in item) {
      const found = item.panels.find((p) => p.id === id);
      if (found) {
        return found;
      }
    } else if (item.id === id) {
      return item;
    }
  }
  return undefined;
}
