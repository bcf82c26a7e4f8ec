//! Every request of a render passes this gate (CDP `Fetch`, paused at the request stage):
//!
//! - **Shared cache, static assets only.** A warm context's HTTP cache is shared by the
//!   renders of different viewers. Grafana marks most of its API `no-store`, but not its
//!   data source proxy, avatars, plugin resources or render routes, so a cacheable
//!   per-viewer answer there would be served to the next viewer. Only paths under
//!   `/public/` (Grafana's build and plugin assets) may come from the cache: every other
//!   request is sent with `Cache-Control: no-cache`, which makes Chromium fetch it anew.
//! - **Credentials to the target only.** Headers of the request that carry credentials
//!   (the CLI's `Authorization: Bearer`) are added to requests to the target's origin
//!   only, never to map tiles or images elsewhere.
//! - **Allowed origins** (`server.allowed-origin`): the main frame may not navigate or be
//!   redirected elsewhere, nor may any frame load a document from elsewhere; with
//!   `server.block-other-hosts` no sub-resource may come from another origin either.
//!   Scripts' connections — WebSockets, which neither `Fetch` nor `Network.setBlockedURLs`
//!   stop in Chromium 156, and workers' fetches — are held to the allowed origins by a
//!   `connect-src` policy added to every document and worker script.

use std::sync::{Arc, Mutex};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, EnableParams, EventRequestPaused, FailRequestParams,
    FulfillRequestParams, GetResponseBodyParams, HeaderEntry, RequestPattern, RequestStage,
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

/// What the gate does with one request.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Refuse,
    /// Continue, adding these headers.
    Continue {
        no_cache: bool,
        credentials: bool,
    },
}

/// The gate's rules for one render: pure, so they are tested without a browser.
#[derive(Debug, Clone)]
struct Rules {
    policy: OriginPolicy,
    /// The render's target origin, which alone gets the request's credentials.
    target: Option<url::Origin>,
}

impl Rules {
    fn judge(&self, url: &str, document: bool, main_frame: bool) -> Verdict {
        let parsed = url::Url::parse(url).ok();
        let origin = parsed.as_ref().map(url::Url::origin);
        let http = matches!(
            parsed.as_ref().map(url::Url::scheme),
            Some("http" | "https")
        );
        if !self.policy.allowed.is_empty() {
            let allowed = origin
                .as_ref()
                .is_some_and(|o| self.policy.allowed.contains(o));
            if !allowed && (document || main_frame || self.policy.block_other_hosts || !http) {
                return Verdict::Refuse;
            }
        }
        let static_asset = parsed
            .as_ref()
            .is_some_and(|u| u.path().contains("/public/"));
        Verdict::Continue {
            no_cache: http && !static_asset,
            credentials: origin.is_some() && origin == self.target,
        }
    }
}

/// Watches one render's requests while alive.
pub struct RequestGate {
    blocked: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RequestGate {
    /// Starts pausing the tab's requests. `credentials` are headers added only to requests
    /// to `target`'s origin.
    pub async fn start(
        page: &Page,
        policy: &OriginPolicy,
        target: &str,
        credentials: &[(String, String)],
    ) -> Result<RequestGate, RenderError> {
        let rules = Rules {
            policy: policy.clone(),
            target: url::Url::parse(target).ok().map(|u| u.origin()),
        };
        let csp = websocket_policy(&policy.allowed);
        let mut paused = page
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(|e| RenderError::cdp("guarding requests", e))?;
        let pattern = RequestPattern {
            url_pattern: Some("*".into()),
            resource_type: None,
            request_stage: Some(RequestStage::Request),
        };
        page.execute(EnableParams {
            patterns: Some(vec![pattern]),
            handle_auth_requests: None,
        })
        .await
        .map_err(|e| RenderError::cdp("guarding requests", e))?;
        let main_frame = page.target_id().as_ref().to_string();
        let (page, blocked) = (page.clone(), Arc::new(Mutex::new(None)));
        let credentials = credentials.to_vec();
        let record = blocked.clone();
        let task = tokio::spawn(async move {
            while let Some(ev) = paused.next().await {
                let document = ev.resource_type == ResourceType::Document;
                let redirect = ev
                    .response_status_code
                    .is_some_and(|c| (300..400).contains(&c));
                if ev.response_error_reason.is_some() || redirect {
                    // A document that failed to load, or a redirect (whose next hop is
                    // paused and judged again): let it go on.
                    let _ = page
                        .execute(ContinueRequestParams::new(ev.request_id.clone()))
                        .await;
                    continue;
                }
                if let (Some(status), Some(csp)) = (ev.response_status_code, &csp) {
                    // A document's or worker's response, paused to add the connection policy.
                    with_policy(&page, &ev, status, csp).await;
                    continue;
                }
                let main = document && ev.frame_id.as_ref() == main_frame;
                match rules.judge(&ev.request.url, document, main) {
                    Verdict::Refuse => {
                        if main && let Ok(mut b) = record.lock() {
                            b.get_or_insert(ev.request.url.clone());
                        }
                        let _ = page
                            .execute(FailRequestParams::new(
                                ev.request_id.clone(),
                                ErrorReason::BlockedByClient,
                            ))
                            .await;
                    }
                    Verdict::Continue {
                        no_cache,
                        credentials: with_credentials,
                    } => {
                        let mut params = ContinueRequestParams::new(ev.request_id.clone());
                        let policed = document || ev.resource_type == ResourceType::Other;
                        params.intercept_response = (policed && csp.is_some()).then_some(true);
                        if no_cache || (with_credentials && !credentials.is_empty()) {
                            let extra = with_credentials.then_some(credentials.as_slice());
                            params.headers =
                                Some(headers_with(ev.request.headers.inner(), no_cache, extra));
                        }
                        let _ = page.execute(params).await;
                    }
                }
            }
        });
        Ok(RequestGate { blocked, task })
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

impl Drop for RequestGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers a paused response with its own body and headers plus the connection policy
/// (`Fetch.continueResponse` cannot add one: Chromium ignores a policy added that way).
async fn with_policy(page: &Page, ev: &EventRequestPaused, status: i64, csp: &str) {
    let body = page
        .execute(GetResponseBodyParams::new(ev.request_id.clone()))
        .await
        .ok()
        .map(|b| {
            if b.result.base64_encoded {
                b.result.body.clone()
            } else {
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &b.result.body)
            }
        });
    let Some(body) = body else {
        let _ = page
            .execute(FailRequestParams::new(
                ev.request_id.clone(),
                ErrorReason::Failed,
            ))
            .await;
        return;
    };
    let mut headers = ev.response_headers.clone().unwrap_or_default();
    headers.push(HeaderEntry {
        name: "Content-Security-Policy".into(),
        value: csp.to_string(),
    });
    let mut params = FulfillRequestParams::new(ev.request_id.clone(), status);
    params.response_headers = Some(headers);
    params.response_phrase = ev.response_status_text.clone().filter(|p| !p.is_empty());
    params.body = Some(body.into());
    let _ = page.execute(params).await;
}

/// The request's headers plus `Cache-Control: no-cache` and `extra` (replacing any of
/// the same name).
fn headers_with(
    original: &serde_json::Value,
    no_cache: bool,
    extra: Option<&[(String, String)]>,
) -> Vec<HeaderEntry> {
    let extra = extra.unwrap_or_default();
    let replaced = |name: &str| {
        (no_cache && name.eq_ignore_ascii_case("cache-control"))
            || extra.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let mut headers: Vec<HeaderEntry> = original
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| !replaced(name))
        .filter_map(|(name, value)| {
            value.as_str().map(|v| HeaderEntry {
                name: name.clone(),
                value: v.to_string(),
            })
        })
        .collect();
    if no_cache {
        headers.push(HeaderEntry {
            name: "Cache-Control".into(),
            value: "no-cache".into(),
        });
    }
    headers.extend(extra.iter().map(|(name, value)| HeaderEntry {
        name: name.clone(),
        value: value.clone(),
    }));
    headers
}

/// The policy that holds scripts' connections — WebSockets, which `Fetch` never pauses,
/// and fetches of workers, which the page's `Fetch` does not see — to the allowed
/// origins: a `connect-src` added to every document's and worker's response. (An `http:`
/// source would also allow `ws:`, so only the allowed origins are named.)
fn websocket_policy(allowed: &[url::Origin]) -> Option<String> {
    if allowed.is_empty() {
        return None;
    }
    let mut sources = vec!["'self'".to_string(), "data:".into(), "blob:".into()];
    for origin in allowed {
        if let url::Origin::Tuple(scheme, host, port) = origin {
            let ws = if scheme == "https" { "wss" } else { "ws" };
            sources.push(format!("{scheme}://{host}:{port}"));
            sources.push(format!("{ws}://{host}:{port}"));
        }
    }
    Some(format!("connect-src {}", sources.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allowed: &[&str], block_other_hosts: bool) -> Rules {
        Rules {
            policy: OriginPolicy {
                allowed: allowed
                    .iter()
                    .map(|o| url::Url::parse(o).expect("url").origin())
                    .collect(),
                block_other_hosts,
            },
            target: Some(
                url::Url::parse("http://grafana:3000/d/x")
                    .expect("url")
                    .origin(),
            ),
        }
    }

    const FRESH: Verdict = Verdict::Continue {
        no_cache: true,
        credentials: true,
    };

    #[test]
    fn only_static_assets_may_come_from_the_shared_cache() {
        let r = rules(&[], false);
        assert_eq!(
            r.judge(
                "http://grafana:3000/api/datasources/proxy/1/x",
                false,
                false
            ),
            FRESH
        );
        assert_eq!(
            r.judge("http://grafana:3000/avatar/abc", false, false),
            FRESH
        );
        assert_eq!(r.judge("http://grafana:3000/d-solo/x/y", true, true), FRESH);
        assert_eq!(
            r.judge("http://grafana:3000/sub/public/build/app.js", false, false),
            Verdict::Continue {
                no_cache: false,
                credentials: true
            }
        );
        // Elsewhere: fetched fresh too, but without the target's credentials.
        assert_eq!(
            r.judge("http://tiles:8080/1/2/3.png", false, false),
            Verdict::Continue {
                no_cache: true,
                credentials: false
            }
        );
        assert_eq!(
            r.judge("data:image/png;base64,xx", false, false),
            Verdict::Continue {
                no_cache: false,
                credentials: false
            }
        );
    }

    #[test]
    fn allowed_origins_fence_every_frame() {
        let r = rules(&["http://grafana:3000"], false);
        assert!(matches!(
            r.judge("http://grafana:3000/d/x", true, true),
            Verdict::Continue { .. }
        ));
        assert_eq!(r.judge("http://evil:80/", true, true), Verdict::Refuse);
        // A Text panel's iframe of an internal service.
        assert_eq!(
            r.judge("http://internal:8080/admin", true, false),
            Verdict::Refuse
        );
        assert_eq!(r.judge("file:///etc/passwd", false, false), Verdict::Refuse);
        // Images from elsewhere pass unless block-other-hosts.
        assert!(matches!(
            r.judge("http://tiles/1.png", false, false),
            Verdict::Continue { .. }
        ));
        let strict = rules(&["http://grafana:3000"], true);
        assert_eq!(
            strict.judge("http://tiles/1.png", false, false),
            Verdict::Refuse
        );
    }

    #[test]
    fn headers_gain_no_cache_and_credentials_replacing_their_namesakes() {
        let original = serde_json::json!({"Accept": "*/*", "cache-control": "max-age=0", "authorization": "x"});
        let creds = vec![("Authorization".to_string(), "Bearer t".to_string())];
        let h = headers_with(&original, true, Some(&creds));
        let pairs: Vec<(&str, &str)> = h
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("Accept", "*/*"),
                ("Cache-Control", "no-cache"),
                ("Authorization", "Bearer t")
            ]
        );
        let h = headers_with(&original, false, None);
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn websockets_are_held_to_allowed_origins() {
        assert_eq!(websocket_policy(&[]), None);
        let allowed = [url::Url::parse("https://grafana:3000")
            .expect("url")
            .origin()];
        assert_eq!(
            websocket_policy(&allowed).as_deref(),
            Some("connect-src 'self' data: blob: https://grafana:3000 wss://grafana:3000")
        );
    }
}
