// Gauge panel. Grafana's gauge visualisation is core-only, so this one draws an arc on a
// canvas itself, with the value, unit and threshold colours computed by @grafana/data.
import { PanelPlugin, PanelProps, formattedValueToString, getFieldDisplayValues } from '@grafana/data';
import { config } from '@grafana/runtime';
import { useEffect, useRef } from 'react';

import { NoData, withMeta } from './common';

function GaugePanel({ data, width, height, fieldConfig, replaceVariables, timeZone }: PanelProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const values = getFieldDisplayValues({
    data: data.series,
    fieldConfig,
    reduceOptions: { calcs: ['lastNotNull'], values: false },
    replaceVariables,
    theme: config.theme2,
    timeZone,
  });
  const first = values[0];
  useEffect(() => {
    const c = canvas.current;
    const ctx = c?.getContext('2d');
    if (!c || !ctx || !first) {
      return;
    }
    const ratio = window.devicePixelRatio || 1;
    c.width = width * ratio;
    c.height = height * ratio;
    ctx.scale(ratio, ratio);
    const theme = config.theme2;
    const min = first.field.min ?? 0;
    const max = first.field.max ?? 100;
    const value = first.display.numeric;
    const share = Math.max(0, Math.min(1, (value - min) / (max - min || 1)));
    const r = Math.max(10, Math.min(width / 2, height * 0.8) - 10);
    const cx = width / 2;
    const cy = height / 2 + r * 0.35;
    const start = Math.PI * 0.75;
    const sweep = Math.PI * 1.5;
    const thickness = Math.max(6, r * 0.18);
    ctx.lineCap = 'butt';
    ctx.lineWidth = thickness;
    ctx.strokeStyle = theme.colors.background.secondary;
    ctx.beginPath();
    ctx.arc(cx, cy, r - thickness / 2, start, start + sweep);
    ctx.stroke();
    ctx.strokeStyle = first.display.color ?? theme.colors.primary.main;
    ctx.beginPath();
    ctx.arc(cx, cy, r - thickness / 2, start, start + sweep * share);
    ctx.stroke();
    const steps = first.field.thresholds?.steps ?? [];
    ctx.lineWidth = Math.max(2, thickness / 4);
    steps.forEach((step, i) => {
      const from = i === 0 ? min : step.value;
      const to = i + 1 < steps.length ? steps[i + 1].value : max;
      const a = Math.max(0, Math.min(1, (from - min) / (max - min || 1)));
      const b = Math.max(0, Math.min(1, (to - min) / (max - min || 1)));
      ctx.strokeStyle = theme.visualization.getColorByName(step.color);
      ctx.beginPath();
      ctx.arc(cx, cy, r + 2, start + sweep * a, start + sweep * b);
      ctx.stroke();
    });
    ctx.fillStyle = first.display.color ?? theme.colors.text.primary;
    ctx.font = `500 ${Math.round(r * 0.4)}px ${theme.typography.fontFamily}`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(formattedValueToString(first.display), cx, cy);
  }, [first, width, height]);
  if (!first || !data.series.length) {
    return <NoData width={width} height={height} />;
  }
  return <canvas ref={canvas} style={{ width, height, display: 'block' }} />;
}

export const plugin = withMeta(new PanelPlugin(GaugePanel).useFieldConfig(), 'gauge', 'Gauge');
