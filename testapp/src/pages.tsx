// Grafana's routes: /d/<uid>/<slug>, /d-solo/<uid>/<slug>?panelId=<id>, /d-csv/<uid>?panelId=<id>.
import { dateTimeFormat, outerJoinDataFrames, toCSV, LoadingState, DataFrame } from '@grafana/data';
import { locationService } from '@grafana/runtime';
import { EmbeddedScene, SceneTimeRange, VizPanel, sceneGraph } from '@grafana/scenes';
import { useEffect, useMemo, useRef } from 'react';
import { useLocation, useParams } from 'react-router-dom';

import { DASHBOARDS, DashboardDef, findPanel } from './dashboards';
import { PageParams, applyUrl, dashboardScene, soloScene } from './scene';

// Like Grafana's dashboard page state manager, a scene once loaded is kept (per page kind,
// dashboard and panel) and shown again when the route comes back to it: the same object,
// re-activated, with the URL's state applied, whose queries run again only if that state
// changed or its relative time range is stale by a tenth of its length (Scenes' rule). A
// changed query string alone keeps the scene on the page and applies the URL to it; the
// route is loaded again only for another dashboard or when `location.state`'s
// `routeReloadCounter` changes (Grafana's `locationService.reload()`).
const kept = new Map<string, EmbeddedScene>();

function keptScene(key: string, params: PageParams, build: () => EmbeddedScene): EmbeddedScene {
  const scene = kept.get(key);
  if (scene) {
    applyUrl(scene, params.search);
    return scene;
  }
  const built = build();
  kept.set(key, built);
  return built;
}

/** Grafana's signal to load the route again: `locationService.reload()` bumps it. */
function useRouteReloadCounter(): string {
  const { state } = useLocation();
  return String((state as { routeReloadCounter?: number } | null)?.routeReloadCounter ?? '');
}

/**
 * Grafana's dashboard page (not its solo page) writes the scene's state into the URL when it
 * shows a scene (URL sync's `updateUrlOnInit`): the URL the page ends on may differ from the
 * one it was opened with. Here: the time range and time zone, when the URL lacks them.
 */
function useWriteUrlOnInit(scene: EmbeddedScene | undefined, params: PageParams) {
  useEffect(() => {
    const range = scene?.state.$timeRange;
    if (!(range instanceof SceneTimeRange)) {
      return;
    }
    const missing: Record<string, string> = {};
    const { from, to, timeZone } = range.state;
    for (const [key, value] of [['from', from], ['to', to], ['timezone', timeZone ?? 'browser']]) {
      if (!params.search.has(key)) {
        missing[key] = value;
      }
    }
    if (Object.keys(missing).length > 0) {
      locationService.partial(missing, true);
    }
  }, [scene, params]);
}

/** Applies a changed URL to the scene on the page (Grafana's URL sync). */
function useUrlSync(scene: EmbeddedScene | undefined, params: PageParams) {
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
    } else if (scene) {
      applyUrl(scene, params.search);
    }
  }, [scene, params]);
}

// Grafana's chrome enters kiosk mode when a URL asks for it and leaves it only when the user
// does (`AppChromeService.setKioskModeFromUrl`): once in kiosk mode, an app stays in it.
let kioskMode = false;

function usePageParams(): PageParams {
  const { search } = useLocation();
  return useMemo(() => {
    const s = new URLSearchParams(search);
    kioskMode = kioskMode || s.has('kiosk');
    return { search: s, kiosk: kioskMode };
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
  const reload = useRouteReloadCounter();
  const key = dash ? `d/${dash.uid}/${params.search.get('viewPanel') ?? ''}/${params.kiosk}` : '';
  const scene = useMemo(
    () => (dash ? keptScene(key, params, () => dashboardScene(dash, params)) : undefined),
    // A changed query string keeps the scene: useUrlSync applies it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [key, reload]
  );
  useUrlSync(scene, params);
  useWriteUrlOnInit(scene, params);
  useEffect(() => {
    document.title = dash ? `${dash.title} - Dashboards - Grafana` : 'Grafana';
  }, [dash]);
  if (!dash || !scene) {
    return <Message text="Dashboard not found" />;
  }
  return (
    <div style={{ minHeight: '100vh', display: 'flex', flexDirection: 'column', padding: params.kiosk ? 8 : 16, boxSizing: 'border-box' }}>
      {!params.kiosk && <h1 style={{ fontSize: 20, margin: '0 0 12px 0' }}>{dash.title}</h1>}
      <scene.Component model={scene} key={reload} />
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
  const dash = useDashboard();
  const params = usePageParams();
  const reload = useRouteReloadCounter();
  const panelId = Number(params.search.get('panelId'));
  // Grafana's solo page loads its route again for every new location (the kept scene,
  // activated again), not only for a new routeReloadCounter.
  const { scene, error } = useMemo(() => {
    const def = dash && findPanel(dash, panelId);
    if (!dash || !def) {
      return { error: dash ? 'Panel not found' : 'Dashboard not found' };
    }
    return { scene: keptScene(`d-solo/${dash.uid}/${panelId}`, params, () => soloScene(dash, def, params)) };
  }, [dash, panelId, reload, params]);
  if (!scene) {
    return <Message text={error ?? 'Panel not found'} />;
  }
  return (
    <div style={{ height: '100vh', width: '100vw', display: 'flex', overflow: 'hidden' }}>
      <scene.Component model={scene} key={`${reload}?${params.search}`} />
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
