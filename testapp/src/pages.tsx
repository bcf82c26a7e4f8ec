// Grafana's routes: /d/<uid>/<slug>, /d-solo/<uid>/<slug>?panelId=<id>, /d-csv/<uid>?panelId=<id>.
import { dateTimeFormat, outerJoinDataFrames, toCSV, LoadingState, DataFrame } from '@grafana/data';
import { EmbeddedScene, VizPanel, sceneGraph } from '@grafana/scenes';
import { useEffect, useMemo } from 'react';
import { useLocation, useParams } from 'react-router-dom';

import { DASHBOARDS, DashboardDef, findPanel } from './dashboards';
import { PageParams, dashboardScene, soloScene } from './scene';

function usePageParams(): PageParams {
  const { search } = useLocation();
  return useMemo(() => {
    const s = new URLSearchParams(search);
    return { search: s, kiosk: s.has('kiosk') };
  }, [search]);
}

function Message({ text }: { text: string }) {
  return <div style={{ padding: 32, fontSize: 18 }}>{text}</div>;
}

function useDashboard(): DashboardDef | undefined {
  const { uid } = useParams();
  return uid ? DASHBOARDS[uid] : undefined;
}

export function DashboardPage() {
  const dash = useDashboard();
  const params = usePageParams();
  const scene = useMemo(() => (dash ? dashboardScene(dash, params) : undefined), [dash, params]);
  useEffect(() => {
    document.title = dash ? `${dash.title} - Dashboards - Grafana` : 'Grafana';
  }, [dash]);
  if (!dash || !scene) {
    return <Message text="Dashboard not found" />;
  }
  return (
    <div style={{ minHeight: '100vh', display: 'flex', flexDirection: 'column', padding: params.kiosk ? 8 : 16, boxSizing: 'border-box' }}>
      {!params.kiosk && <h1 style={{ fontSize: 20, margin: '0 0 12px 0' }}>{dash.title}</h1>}
      <scene.Component model={scene} />
    </div>
  );
}

function useSoloScene(): { scene?: EmbeddedScene; error?: string } {
  const dash = useDashboard();
  const params = usePageParams();
  return useMemo(() => {
    if (!dash) {
      return { error: 'Dashboard not found' };
    }
    const def = findPanel(dash, Number(params.search.get('panelId')));
    if (!def) {
      return { error: 'Panel not found' };
    }
    return { scene: soloScene(dash, def, params) };
  }, [dash, params]);
}

export function SoloPage() {
  const { scene, error } = useSoloScene();
  if (!scene) {
    return <Message text={error ?? 'Panel not found'} />;
  }
  return (
    <div style={{ height: '100vh', width: '100vw', display: 'flex', overflow: 'hidden' }}>
      <scene.Component model={scene} />
    </div>
  );
}

function download(frames: DataFrame[], title: string) {
  const joined = frames.length > 1 ? outerJoinDataFrames({ frames }) : frames[0];
  const csv = toCSV(joined ? [joined] : []);
  const blob = new Blob([String.fromCharCode(0xfeff), csv], { type: 'text/csv;charset=utf-8' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  // Grafana's name: "<panel title>-data-<date>.csv" (the browser turns ':' into '_').
  a.download = `${title}-data-${dateTimeFormat(new Date())}.csv`;
  document.body.appendChild(a);
  a.click();
}

/** Loads the panel's data, then makes the browser download it as CSV (@grafana/data's toCSV). */
export function CsvPage() {
  const { scene, error } = useSoloScene();
  useEffect(() => {
    if (!scene) {
      return;
    }
    const panel = sceneGraph.findObject(scene, (o) => o instanceof VizPanel) as VizPanel | null;
    if (!panel) {
      return;
    }
    let done = false;
    const data = sceneGraph.getData(panel);
    const check = () => {
      const d = data.state.data;
      if (!done && d && (d.state === LoadingState.Done || d.state === LoadingState.Error) && d.series.length) {
        done = true;
        download(panel.applyFieldConfig(d).series, sceneGraph.interpolate(panel, panel.state.title));
      }
    };
    const sub = data.subscribeToState(check);
    check();
    return () => sub.unsubscribe();
  }, [scene]);
  if (!scene) {
    return <Message text={error ?? 'Panel not found'} />;
  }
  return (
    <div style={{ height: '100vh', width: '100vw', display: 'flex', overflow: 'hidden' }}>
      <scene.Component model={scene} />
    </div>
  );
}
