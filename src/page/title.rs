//! The dashboard's title, read from Grafana's API by the page itself: same origin, with the
//! render's own credentials and the browser's trust, for a report's subject and header.

use chromiumoxide::Page;

use super::readiness::evaluate;

/// `GET <sub-path>/api/dashboards/uid/<uid>` of the page's dashboard; null when the page is
/// no dashboard or Grafana does not answer with a title.
const TITLE_JS: &str = r#"(async () => {
  const m = location.pathname.match(/^(.*?)\/d(?:-solo|-csv)?\/([^/]+)/);
  if (!m) return null;
  try {
    const r = await fetch(m[1] + '/api/dashboards/uid/' + encodeURIComponent(m[2]),
      {credentials: 'same-origin', headers: {Accept: 'application/json'}});
    if (!r.ok) return null;
    const t = ((await r.json()) || {}).dashboard?.title;
    return typeof t === 'string' && t ? t.slice(0, 200) : null;
  } catch (e) { return null; }
})()"#;

/// The title Grafana gives the page's dashboard, if it says.
pub(crate) async fn fetch(page: &Page) -> Option<String> {
    evaluate::<Option<String>>(page, TITLE_JS, "reading the dashboard's title")
        .await
        .ok()
        .flatten()
}
