//! Catching a CSV: Grafana's `d-csv` page makes the browser download a file; we catch that
//! download in a private temporary directory (always removed) and answer with its bytes.

use std::sync::Arc;

use chromiumoxide::cdp::browser_protocol::browser::{
    BrowserContextId, CancelDownloadParams, DownloadProgressState, EventDownloadProgress,
    EventDownloadWillBegin, SetDownloadBehaviorBehavior, SetDownloadBehaviorParams,
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
    /// The command that forbids downloads again, until it was sent.
    denial: Option<SetDownloadBehaviorParams>,
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
            .map_err(|e| RenderError::local("preparing the download directory", e))?;
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
        let denial = SetDownloadBehaviorParams::builder()
            .behavior(SetDownloadBehaviorBehavior::Deny)
            .browser_context_id(context.clone())
            .build()
            .map_err(|e| RenderError::cdp("allowing downloads", e))?;
        cdp.execute(allow)
            .await
            .map_err(|e| RenderError::cdp("allowing downloads", e))?;
        Ok(Download {
            denial: Some(denial),
            browser: browser.clone(),
            context,
            frame,
            dir,
            begins,
            progress,
        })
    }

    /// Waits up to `wait` (the readiness timeout) for the page's download to complete, at
    /// most `max_bytes` long; returns its bytes and suggested name.
    pub async fn finish(
        mut self,
        wait: std::time::Duration,
        max_bytes: u64,
    ) -> Result<(bytes::Bytes, String), RenderError> {
        let result = self.collect(wait, max_bytes).await;
        self.deny().await;
        result
    }

    async fn collect(
        &mut self,
        wait: std::time::Duration,
        max_bytes: u64,
    ) -> Result<(bytes::Bytes, String), RenderError> {
        let waited = tokio::time::timeout(wait, self.completed(max_bytes)).await;
        let begun = match waited {
            Ok(result) => result?,
            Err(_) => {
                return Err(RenderError::ReadinessTimeout {
                    timeout: wait,
                    detail:
                        "the page's CSV download did not complete within browser.readiness.timeout"
                            .into(),
                });
            }
        };
        let path = self.dir.path().join(&begun.guid);
        let size = tokio::fs::metadata(&path)
            .await
            .map_err(|e| RenderError::local("reading the downloaded CSV", e))?
            .len();
        if size > max_bytes {
            return Err(too_large(size, max_bytes));
        }
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| RenderError::local("reading the downloaded CSV", e))?;
        Ok((bytes.into(), begun.suggested_filename.clone()))
    }

    /// The download's start, once it has completed; a download growing past `max_bytes`
    /// is cancelled.
    async fn completed(
        &mut self,
        max_bytes: u64,
    ) -> Result<Arc<EventDownloadWillBegin>, RenderError> {
        let gone = || RenderError::cdp("waiting for the CSV download", "the browser went away");
        let begun = loop {
            match self.begins.next().await {
                Some(ev) if ev.frame_id.as_ref() == self.frame => break ev,
                Some(_) => continue,
                None => return Err(gone()),
            }
        };
        loop {
            let Some(ev) = self.progress.next().await else {
                return Err(gone());
            };
            if ev.guid != begun.guid {
                continue;
            }
            let size = ev.received_bytes.max(ev.total_bytes);
            if size > max_bytes as f64 {
                let cancel = CancelDownloadParams::builder()
                    .guid(begun.guid.clone())
                    .browser_context_id(self.context.clone())
                    .build()
                    .map_err(|e| RenderError::cdp("cancelling the CSV download", e))?;
                let _ = self.browser.cdp.execute(cancel).await;
                return Err(too_large(size as u64, max_bytes));
            }
            match ev.state {
                DownloadProgressState::Completed => return Ok(begun),
                DownloadProgressState::Canceled => {
                    return Err(RenderError::cdp(
                        "downloading the CSV",
                        "the browser canceled the download",
                    ));
                }
                DownloadProgressState::InProgress => continue,
            }
        }
    }
}

/// When a download's directory is looked at again after the render (see `Drop`).
const RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

fn too_large(size: u64, max: u64) -> RenderError {
    RenderError::TooLarge(format!(
        "the CSV download is at least {size} bytes, above render.max-csv-bytes ({max}); \
         export fewer rows or raise render.max-csv-bytes"
    ))
}

impl Download {
    /// Gives the download up (the page will not make one): downloads are forbidden again
    /// before the directory is removed.
    pub async fn abandon(mut self) {
        self.deny().await;
    }

    /// Forbids further downloads in the context (it goes back to the pool).
    async fn deny(&mut self) {
        if let Some(deny) = self.denial.take() {
            let _ = self.browser.cdp.execute(deny).await;
        }
    }
}

impl Drop for Download {
    /// A render abandoned before `finish` (an error, its deadline) still forbids downloads.
    /// The directory goes with the `TempDir`, but Chromium may still be finishing with a
    /// download (one cancelled for its size) and create it again: it is removed once more a
    /// moment later, on a thread of its own so that it happens even when the runtime stops.
    fn drop(&mut self) {
        if let Some(deny) = self.denial.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let browser = self.browser.clone();
            rt.spawn(async move {
                let _ = browser.cdp.execute(deny).await;
            });
        }
        let dir = self.dir.path().to_path_buf();
        let _ = std::thread::Builder::new()
            .name("grender-csv-cleanup".into())
            .spawn(move || {
                std::thread::sleep(RECHECK);
                if dir.exists() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            });
    }
}
