// Watches Grafana's readiness signals in a real headless Chromium for one URL:
// when window.__grafanaSceneContext appears, every change of
// window.__grafanaRunningQueryCount (recorded by a property hook, not set by us), and
// when each <canvas> first has drawn pixels. Times are ms since navigation start.
//
// Usage: node --experimental-websocket testapp/tools/readiness.mjs URL [ms=8000] [WxH=1200x900]
// (Node 22+ needs no flag.) Needs chromium-headless-shell (or CHROME=path). With
// DOWNLOAD_DIR=dir, downloads (the /d-csv/ route's CSV) are saved there.
import { spawn } from 'node:child_process';

const [url, waitArg = '8000', size = '1200x900'] = process.argv.slice(2);
if (!url) {
  console.error('usage: readiness.mjs URL [ms] [WxH]');
  process.exit(2);
}
const chrome = process.env.CHROME ?? 'chromium-headless-shell';
const port = 9300 + Math.floor(Math.random() * 600);
const proc = spawn(chrome, [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', `--remote-debugging-port=${port}`, `--window-size=${size.replace('x', ',')}`,
  'about:blank',
], { stdio: 'ignore' });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let targets;
for (let i = 0; i < 100 && !targets; i++) {
  await sleep(100);
  targets = await fetch(`http://127.0.0.1:${port}/json/list`).then((r) => r.json()).catch(() => undefined);
}
const page = targets.find((t) => t.type === 'page');
const ws = new WebSocket(page.webSocketDebuggerUrl);
await new Promise((r) => ws.addEventListener('open', r));
let id = 0;
const pending = new Map();
ws.addEventListener('message', (e) => {
  const msg = JSON.parse(e.data);
  if (msg.id && pending.has(msg.id)) {
    pending.get(msg.id)(msg);
    pending.delete(msg.id);
  }
});
const send = (method, params = {}) =>
  new Promise((r) => {
    const n = ++id;
    pending.set(n, r);
    ws.send(JSON.stringify({ id: n, method, params }));
  });

const hook = `(() => {
  const t0 = performance.timeOrigin;
  const log = (window.__trace = []);
  const at = () => Math.round(performance.now());
  let count;
  Object.defineProperty(window, '__grafanaRunningQueryCount', {
    configurable: true,
    get() { return count; },
    set(v) { count = v; log.push([at(), 'count', v]); },
  });
  let ctx;
  Object.defineProperty(window, '__grafanaSceneContext', {
    configurable: true,
    get() { return ctx; },
    set(v) { ctx = v; log.push([at(), 'sceneContext', v ? v.constructor.name + ':' + (v.state && v.state.key) : String(v)]); },
  });
  const drawn = new WeakSet();
  const poll = () => {
    for (const c of document.querySelectorAll('canvas')) {
      if (drawn.has(c) || !c.width || !c.height) continue;
      try {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 4 * 7) {
          if (d[i]) { drawn.add(c); log.push([at(), 'canvasDrawn', c.width + 'x' + c.height]); break; }
        }
      } catch (e) {}
    }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
})();`;
if (process.env.DOWNLOAD_DIR) {
  // Let /d-csv/ downloads land there.
  await send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: process.env.DOWNLOAD_DIR });
}
await send('Page.enable');
await send('Page.addScriptToEvaluateOnNewDocument', { source: hook });
await send('Page.navigate', { url });
await sleep(Number(waitArg));
const res = await send('Runtime.evaluate', {
  expression: 'JSON.stringify({trace: window.__trace, count: window.__grafanaRunningQueryCount, hasContext: !!window.__grafanaSceneContext, canvases: document.querySelectorAll("canvas").length, scrollHeight: document.documentElement.scrollHeight})',
  returnByValue: true,
});
console.log(res.result?.result?.value ?? JSON.stringify(res));
ws.close();
proc.kill();
process.exit(0);
