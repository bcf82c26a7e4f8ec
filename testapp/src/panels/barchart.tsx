// Bar chart panel: uPlot bars through @grafana/ui's TimeSeries (Grafana's barchart panel is core-only).
import { PanelPlugin, PanelProps } from '@grafana/data';

import { withMeta } from './common';
import { plugin as timeseries } from './timeseries';

const TimeSeriesPanel = timeseries.panel!;

function BarChartPanel(props: PanelProps<any>) {
  return <TimeSeriesPanel {...props} options={{ ...props.options, drawStyle: 'bars' }} />;
}

export const plugin = withMeta(new PanelPlugin(BarChartPanel).useFieldConfig(), 'barchart', 'Bar chart');
