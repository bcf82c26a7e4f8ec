// Time series panel: Grafana's uPlot-based TimeSeries component from @grafana/ui.
import { DataFrame, FieldType, PanelPlugin, PanelProps } from '@grafana/data';
import { LegendDisplayMode } from '@grafana/schema';
import { TimeSeries } from '@grafana/ui';
import { useMemo } from 'react';

import { NoData, withMeta } from './common';

export interface Options {
  drawStyle?: 'line' | 'bars' | 'points';
  showLegend?: boolean;
}

const CUSTOM_DEFAULTS = {
  drawStyle: 'line',
  lineInterpolation: 'linear',
  lineWidth: 2,
  fillOpacity: 10,
  gradientMode: 'none',
  showPoints: 'never',
  pointSize: 5,
  spanNulls: false,
  insertNulls: false,
  barAlignment: 0,
  barWidthFactor: 0.6,
  axisPlacement: 'auto',
  axisLabel: '',
  axisColorMode: 'text',
  axisBorderShow: false,
  axisCenteredZero: false,
  scaleDistribution: { type: 'linear' },
  stacking: { mode: 'none', group: 'A' },
  hideFrom: { legend: false, tooltip: false, viz: false },
  thresholdsStyle: { mode: 'off' },
  lineStyle: { fill: 'solid' },
};

/** Field config `custom` defaults (Grafana's time series panel registers these as options). */
export function withCustomDefaults(frames: DataFrame[], overrides: Record<string, unknown>): DataFrame[] {
  return frames.map((frame) => ({
    ...frame,
    fields: frame.fields.map((field) => ({
      ...field,
      config: { ...field.config, custom: { ...CUSTOM_DEFAULTS, ...overrides, ...(field.config.custom ?? {}) } },
    })),
  }));
}

function TimeSeriesPanel({ data, width, height, timeRange, timeZone, options }: PanelProps<Options>) {
  const bars = options.drawStyle === 'bars';
  const frames = useMemo(
    () => withCustomDefaults(data.series, bars ? { drawStyle: 'bars', fillOpacity: 100, lineWidth: 1 } : {}),
    [data.series, bars]
  );
  const hasNumbers = frames.some((f) => f.fields.some((x) => x.type === FieldType.number));
  if (!hasNumbers) {
    return <NoData width={width} height={height} />;
  }
  return (
    <TimeSeries
      frames={frames}
      structureRev={data.structureRev}
      timeRange={timeRange}
      timeZone={timeZone}
      width={width}
      height={height}
      options={options}
      legend={{ showLegend: options.showLegend !== false, displayMode: LegendDisplayMode.List, placement: 'bottom', calcs: [] }}
    />
  );
}

export const plugin = withMeta(new PanelPlugin<Options>(TimeSeriesPanel).useFieldConfig(), 'timeseries', 'Time series');
