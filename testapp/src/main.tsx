// Entry point: Grafana's boot sequence in miniature, then the router.
import { config, locationService } from '@grafana/runtime';
import { GlobalStyles, ThemeContext } from '@grafana/ui';
import { ReactNode, useLayoutEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { Navigator, Route, Router, Routes } from 'react-router-dom';

import { bootstrap } from './bootstrap';
import { CsvPage, DashboardPage, SoloPage } from './pages';

bootstrap();

document.body.classList.add(config.theme2.isLight ? 'theme-light' : 'theme-dark');

/**
 * Routes follow @grafana/runtime's `locationService` history (the `history` 4 package, as in
 * Grafana): its `window.history.state` is `{key, state}`, and `location.state` is what
 * Grafana's pages read (`routeReloadCounter`).
 */
function GrafanaRouter({ children }: { children: ReactNode }) {
  const history = locationService.getHistory();
  const [location, setLocation] = useState(history.location);
  useLayoutEffect(() => history.listen((l) => setLocation(l)), [history]);
  return (
    <Router location={location} navigator={history as unknown as Navigator}>
      {children}
    </Router>
  );
}

function NotFound() {
  return <div style={{ padding: 32 }}>Page not found</div>;
}

const root = document.getElementById('reactRoot');
if (root) {
  createRoot(root).render(
    <ThemeContext.Provider value={config.theme2}>
      <GlobalStyles />
      <GrafanaRouter>
        <Routes>
          <Route path="/d/:uid/:slug?" element={<DashboardPage />} />
          <Route path="/d-solo/:uid/:slug?" element={<SoloPage />} />
          <Route path="/d-csv/:uid/:slug?" element={<CsvPage />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </GrafanaRouter>
    </ThemeContext.Provider>
  );
}
