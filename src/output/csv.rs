//! CSV output: Grafana's `d-csv` page makes the browser download a file; we catch that
//! download in a private temporary directory (always removed) and answer with its bytes.

use std::sync::Arc;

use chromiumoxide::cdp::browser_protocol::browser::{
    BrowserContextId, DownloadProgressState, EventDownloadProgress, EventDownloadWillBegin,
    SetDownloadBehaviorBehavior, SetDownloadBehaviorParams,
};
use futures::StreamExt;

use crate::browser::LiveBrowser;
use crate::error::RenderError;

/// A download being waited for in one tab's context.
pub struct Download {
    browser: Arc<LiveBrowser>,
    context: BrowserContextId,
    frame: String,
    dir: tempfile::TempDir,
    begins: chromiumoxide::listeners::EventStream<EventDownloadWillBegin>,
    progress: chromiumoxide::listeners::EventStream<EventDownloadProgress>,
}

impl Download {
    /// Lets the tab's context download into a fresh private directory and starts listening.
    pub async fn start(
        browser: &Arc<LiveBrowser>,
        context: BrowserContextId,
        frame: String,
    ) -> Result<Self, RenderError> {
        let prefix = format!("grender-csv-{}-", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir()
            .map_err(|e| RenderError::cdp("preparing the download directory", e))?;
        let cdp = &browser.cdp;
        let begins = cdp
            .event_listener::<EventDownloadWillBegin>()
            .await
            .map_err(|e| RenderError::cdp("listening for downloads", e))?;
        let progress = cdp
            .event_listener::<EventDownloadProgress>()
            .await
            .map_err(|e| RenderError::cdp("listening for downloads", e))?;
        let allow = SetDownloadBehaviorParams::builder()
            .behavior(SetDownloadBehaviorBehavior::AllowAndName)
            .browser_context_id(context.clone())
            .download_path(dir.path().to_string_lossy().to_string())
            .events_enabled(true)
            .build()
            .map_err(|e| RenderError::cdp("allowing downloads", e))?;
        cdp.execute(allow)
            .await
            .map_err(|e| RenderError::cdp("allowing downloads", e))?;
        Ok(Download {
            browser: browser.clone(),
            context,
            frame,
            dir,
            begins,
            progress,
        })
    }

    /// Waits for the page's download to complete; returns its bytes and suggested name.
    pub async fn finish(mut self) -> Result<(bytes::Bytes, String), RenderError> {
        let begun = loop {
            match self.begins.next().await {
                Some(ev) if ev.frame_id.as_ref() == self.frame => break ev,
                Some(_) => continue,
                None => {
                    return Err(RenderError::cdp(
                        "waiting for the CSV download",
                        "the browser went away",
                    ));
                }
            }
        };
        loop {
            match self.progress.next().await {
                Some(ev) if ev.guid == begun.guid => match ev.state {
                    DownloadProgressState::Completed => break,
                    DownloadProgressState::Canceled => {
                        return Err(RenderError::cdp(
                            "downloading the CSV",
                            "the browser canceled the download",
                        ));
                    }
                    DownloadProgressState::InProgress => continue,
                },
                Some(_) => continue,
                None => {
                    return Err(RenderError::cdp(
                        "waiting for the CSV download",
                        "the browser went away",
                    ));
                }
            }
        }
        let path = self.dir.path().join(&begun.guid);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| RenderError::cdp("reading the downloaded CSV", e))?;
        self.close().await;
        Ok((bytes.into(), begun.suggested_filename.clone()))
    }

    /// Forbids further downloads in the context (it goes back to the pool).
    async fn close(&self) {
        if let Ok(deny) = SetDownloadBehaviorParams::builder()
            .behavior(SetDownloadBehaviorBehavior::Deny)
            .browser_context_id(self.context.clone())
            .build()
        {
            let _ = self.browser.cdp.execute(deny).await;
        }
    }
}

/// The download name for `Content-Disposition`: the last path segment (never a `/` or `\`),
/// ending in `.csv`; `None` when nothing usable is left.
pub fn file_name_from(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let base: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    if base.is_empty() || base == "." || base == ".." {
        return None;
    }
    if base.to_ascii_lowercase().ends_with(".csv") {
        Some(base)
    } else {
        Some(format!("{base}.csv"))
    }
}

/// `attachment; filename="…"` with an ASCII fallback, plus RFC 5987 `filename*` when the
/// name is not plain ASCII, so every client gets the name right.
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if ascii == name {
        return format!("attachment; filename=\"{name}\"");
    }
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_base_names_ending_in_csv() {
        assert_eq!(
            file_name_from("/tmp/../etc/passwd").as_deref(),
            Some("passwd.csv")
        );
        assert_eq!(
            file_name_from("C:\\x\\data.CSV").as_deref(),
            Some("data.CSV")
        );
        assert_eq!(
            file_name_from("Prometheus_ 1-data-2026.csv").as_deref(),
            Some("Prometheus_ 1-data-2026.csv")
        );
        assert_eq!(file_name_from("dir/"), None);
        assert_eq!(file_name_from(".."), None);
    }

    #[test]
    fn non_ascii_names_are_encoded() {
        assert_eq!(
            content_disposition("a b.csv"),
            "attachment; filename=\"a b.csv\""
        );
        let d = content_disposition("Données ✓.csv");
        assert!(d.contains("filename=\"Donn_es _.csv\""), "{d}");
        assert!(
            d.contains("filename*=UTF-8''Donn%C3%A9es%20%E2%9C%93.csv"),
            "{d}"
        );
    }
}
