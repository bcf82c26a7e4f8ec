// Entry point: Grafana's boot sequence in miniature, then the router.
import { config } from '@grafana/runtime';
import { GlobalStyles, ThemeContext } from '@grafana/ui';
import { createRoot } from 'react-dom/client';
import { BrowserRouter, Route, Routes } from 'react-router-dom';

import { bootstrap } from './bootstrap';
import { CsvPage, DashboardPage, SoloPage } from './pages';

bootstrap();

document.body.classList.add(config.theme2.isLight ? 'theme-light' : 'theme-dark');

function NotFound() {
  return <div style={{ padding: 32 }}>Page not found</div>;
}

const root = document.getElementById('reactRoot');
if (root) {
  createRoot(root).render(
    <ThemeContext.Provider value={config.theme2}>
      <GlobalStyles />
      <BrowserRouter>
        <Routes>
          <Route path="/d/:uid/:slug?" element={<DashboardPage />} />
          <Route path="/d-solo/:uid/:slug?" element={<SoloPage />} />
          <Route path="/d-csv/:uid/:slug?" element={<CsvPage />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </BrowserRouter>
    </ThemeContext.Provider>
  );
}
