// Text panel: markdown rendered by @grafana/data, variables interpolated by the scene.
import { GrafanaTheme2, PanelPlugin, PanelProps, renderTextPanelMarkdown } from '@grafana/data';
import { useStyles2 } from '@grafana/ui';
import { css } from '@emotion/css';

import { withMeta } from './common';

interface Options {
  content?: string;
}

const getStyles = (theme: GrafanaTheme2) =>
  css({
    height: '100%',
    overflow: 'auto',
    padding: theme.spacing(1),
    color: theme.colors.text.primary,
    fontSize: theme.typography.body.fontSize,
    h1: { fontSize: theme.typography.h2.fontSize },
  });

function TextPanel({ options, replaceVariables, width, height }: PanelProps<Options>) {
  const style = useStyles2(getStyles);
  const html = renderTextPanelMarkdown(replaceVariables(options.content ?? ''));
  return <div className={style} style={{ width, height }} dangerouslySetInnerHTML={{ __html: html }} />;
}

export const plugin = withMeta(new PanelPlugin<Options>(TextPanel), 'text', 'Text', true);
