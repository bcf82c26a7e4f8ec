// Stat panel: @grafana/ui's BigValue with a sparkline, values reduced by @grafana/data.
import { PanelPlugin, PanelProps, getFieldDisplayValues } from '@grafana/data';
import { config } from '@grafana/runtime';
import { BigValue, BigValueColorMode, BigValueGraphMode, BigValueJustifyMode, BigValueTextMode } from '@grafana/ui';

import { NoData, withMeta } from './common';

function StatPanel({ data, width, height, fieldConfig, replaceVariables, timeZone }: PanelProps) {
  const values = getFieldDisplayValues({
    data: data.series,
    fieldConfig,
    reduceOptions: { calcs: ['lastNotNull'], values: false },
    replaceVariables,
    theme: config.theme2,
    timeZone,
    sparkline: true,
  });
  if (!values.length || !data.series.length) {
    return <NoData width={width} height={height} />;
  }
  const w = Math.floor(width / values.length);
  return (
    <div style={{ display: 'flex', width, height }}>
      {values.map((v, i) => (
        <BigValue
          key={i}
          value={v.display}
          sparkline={v.sparkline}
          colorMode={BigValueColorMode.Value}
          graphMode={BigValueGraphMode.Area}
          justifyMode={BigValueJustifyMode.Auto}
          textMode={BigValueTextMode.Auto}
          width={w}
          height={height}
          theme={config.theme2}
        />
      ))}
    </div>
  );
}

export const plugin = withMeta(new PanelPlugin(StatPanel).useFieldConfig(), 'stat', 'Stat');
