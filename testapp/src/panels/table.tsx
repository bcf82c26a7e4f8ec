// Table panel: @grafana/ui's Table.
import { PanelPlugin, PanelProps } from '@grafana/data';
import { Table } from '@grafana/ui';

import { NoData, withMeta } from './common';

function TablePanel({ data, width, height }: PanelProps) {
  const frame = data.series[0];
  if (!frame) {
    return <NoData width={width} height={height} />;
  }
  return <Table data={frame} width={width} height={height} />;
}

export const plugin = withMeta(new PanelPlugin(TablePanel).useFieldConfig(), 'table', 'Table');
