//! Keeps a render inside the allowed Grafana origins (`server.allowed-origin`): the main
//! frame may not navigate or be redirected elsewhere, and with
//! `server.block-other-hosts` no sub-resource may be fetched from another origin either.
//! Requests are paused with CDP `Fetch` only when origins are configured, so the default
//! costs nothing.

use std::sync::{Arc, Mutex};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, EnableParams, EventRequestPaused, FailRequestParams, RequestPattern,
    RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, ResourceType};
use futures::StreamExt;

use crate::error::RenderError;

/// Which origins a render may reach.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Empty: anything http(s) goes.
    pub allowed: Vec<url::Origin>,
    /// Also refuse sub-resources from other origins.
    pub block_other_hosts: bool,
}

/// Watches one render's requests while alive.
pub struct NavigationGuard {
    blocked: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl NavigationGuard {
    /// Starts pausing the tab's requests; `None` when the policy allows everything.
    pub async fn start(
        page: &Page,
        policy: &OriginPolicy,
    ) -> Result<Option<NavigationGuard>, RenderError> {
        if policy.allowed.is_empty() {
            return Ok(None);
        }
        let mut paused = page
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(|e| RenderError::cdp("guarding navigation", e))?;
        let pattern = RequestPattern {
            url_pattern: Some("*".into()),
            resource_type: None,
            request_stage: Some(RequestStage::Request),
        };
        let enable = EnableParams {
            patterns: Some(vec![pattern]),
            handle_auth_requests: None,
        };
        page.execute(enable)
            .await
            .map_err(|e| RenderError::cdp("guarding navigation", e))?;
        let main_frame = page.target_id().as_ref().to_string();
        let (page, policy, blocked) = (page.clone(), policy.clone(), Arc::new(Mutex::new(None)));
        let record = blocked.clone();
        let task = tokio::spawn(async move {
            while let Some(ev) = paused.next().await {
                let url = ev.request.url.clone();
                let origin = url::Url::parse(&url).map(|u| u.origin());
                let allowed = origin.as_ref().is_ok_and(|o| policy.allowed.contains(o));
                let main = ev.resource_type == ResourceType::Document
                    && ev.frame_id.as_ref() == main_frame;
                let refuse = !allowed && (main || policy.block_other_hosts || !is_http(&url));
                if refuse {
                    if main && let Ok(mut b) = record.lock() {
                        b.get_or_insert(url);
                    }
                    let _ = page
                        .execute(FailRequestParams::new(
                            ev.request_id.clone(),
                            ErrorReason::BlockedByClient,
                        ))
                        .await;
                } else {
                    let _ = page
                        .execute(ContinueRequestParams::new(ev.request_id.clone()))
                        .await;
                }
            }
        });
        Ok(Some(NavigationGuard { blocked, task }))
    }

    /// The error for a main-frame navigation that was refused, if any.
    pub fn refused(&self) -> Option<RenderError> {
        self.blocked
            .lock()
            .ok()
            .and_then(|b| b.clone())
            .map(|url| RenderError::ForbiddenNavigation { url })
    }
}

impl Drop for NavigationGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}
