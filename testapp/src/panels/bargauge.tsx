// Bar gauge panel: @grafana/ui's BarGauge, one bar per series.
import { PanelPlugin, PanelProps, VizOrientation, getDisplayValueAlignmentFactors, getFieldDisplayValues } from '@grafana/data';
import { config } from '@grafana/runtime';
import { BarGaugeDisplayMode } from '@grafana/schema';
import { BarGauge } from '@grafana/ui';

import { NoData, withMeta } from './common';

function BarGaugePanel({ data, width, height, fieldConfig, replaceVariables, timeZone }: PanelProps) {
  const values = getFieldDisplayValues({
    data: data.series,
    fieldConfig,
    reduceOptions: { calcs: ['lastNotNull'], values: false },
    replaceVariables,
    theme: config.theme2,
    timeZone,
  });
  if (!values.length || !data.series.length) {
    return <NoData width={width} height={height} />;
  }
  const h = Math.floor(height / values.length);
  const alignmentFactors = getDisplayValueAlignmentFactors(values);
  return (
    <div style={{ width, height }}>
      {values.map((v, i) => (
        <BarGauge
          key={i}
          value={v.display}
          field={v.field}
          display={v.view?.getFieldDisplayProcessor?.(v.rowIndex ?? 0)}
          orientation={VizOrientation.Horizontal}
          displayMode={BarGaugeDisplayMode.Gradient}
          showUnfilled
          width={width}
          height={h}
          itemSpacing={4}
          alignmentFactors={alignmentFactors}
          theme={config.theme2}
        />
      ))}
    </div>
  );
}

export const plugin = withMeta(new PanelPlugin(BarGaugePanel).useFieldConfig(), 'bargauge', 'Bar gauge');
