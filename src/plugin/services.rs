//! The gRPC services Grafana calls on a renderer plugin: `Renderer` (Render, RenderCSV),
//! `Diagnostics` (CheckHealth, CollectMetrics) and go-plugin's `GRPCController` (Shutdown).
//! Each request becomes the same typed request as an HTTP one and runs through the same
//! renderer; the result is written to the file Grafana named, which must be a new file in one
//! of Grafana's render directories ([`super::output`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use super::proto::plugin::{Empty, grpc_controller_server::GrpcController};
use super::proto::pluginextensionv2::{
    RenderCsvRequest, RenderCsvResponse, RenderRequest, RenderResponse, StringList,
    renderer_server::Renderer,
};
use super::proto::pluginv2::{
    CheckHealthRequest, CheckHealthResponse, CollectMetricsRequest, CollectMetricsResponse,
    check_health_response::HealthStatus, collect_metrics_response::Payload,
    diagnostics_server::Diagnostics,
};
use crate::browser::BrowserState;
use crate::request::ParamError;
use crate::service::{AuthOutcome, Route, Service};

/// What Grafana's side shows for a token mismatch; it expects exactly this text.
const UNAUTHORIZED: &str = "Unauthorized request";

/// The renderer plugin's services over the transport-neutral service.
#[derive(Clone)]
pub struct PluginServices {
    pub service: Arc<Service>,
    /// Fired by go-plugin's Shutdown call.
    pub shutdown: Arc<tokio::sync::Notify>,
    /// plugin.output-dir: where `filePath` may point; empty: directories named png, csv or pdf.
    pub output_dirs: Arc<Vec<PathBuf>>,
}

impl PluginServices {
    /// The index of the accepted token `given` matches; UNAUTHENTICATED otherwise, with one
    /// log line that says which setting to change (never either value).
    fn authorize(&self, given: &str) -> Result<usize, Status> {
        match self.service.authenticate(Some(given.as_bytes())) {
            AuthOutcome::Valid(index) => Ok(index),
            _ => {
                tracing::warn!(
                    "refused a render: the auth token Grafana sent does not match. Grafana's [rendering] renderer_token \
                     (or [plugin.grafana-image-renderer] auth_token) must equal this plugin's GF_PLUGIN_AUTH_TOKEN \
                     (default \"-\")"
                );
                Err(Status::unauthenticated(UNAUTHORIZED))
            }
        }
    }

    /// Parses the request as `/render` would, runs it and writes the answer to `file_path`.
    async fn run(
        &self,
        token: usize,
        query: String,
        headers: &HashMap<String, StringList>,
        file_path: &str,
        csv: bool,
    ) -> Result<(String, Option<String>), Status> {
        let language = header(headers, "accept-language");
        let route = if csv {
            Route::GrpcCsv
        } else {
            Route::GrpcRender
        };
        let req = match self.service.parse(route, &query, language.as_deref()) {
            Ok(req) => req,
            Err(ParamError::Forbidden(m)) => {
                return Err(Status::invalid_argument(format!(
                    "Forbidden query url protocol: {m}"
                )));
            }
            Err(e) => return Ok((format!("[{}] {e}", e.code()), None)),
        };
        let out = match super::output::check(file_path, &self.output_dirs) {
            Ok(out) => out,
            Err(why) => {
                tracing::warn!("refused a render: {why}");
                return Ok((format!("[bad-request] {why}"), None));
            }
        };
        let started = Instant::now();
        let target = crate::request::redacted(&req.url);
        match self.service.render(req, Some(token), route).await {
            Ok(capture) => {
                let bytes = capture.bytes.clone();
                let written =
                    tokio::task::spawn_blocking(move || super::output::write_new(&out, &bytes))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                if let Err(e) = written {
                    tracing::error!(url = %target, "cannot write the new file {file_path}: {e}");
                    return Ok((
                        format!("[bad-request] cannot write the new file {file_path}: {e}"),
                        None,
                    ));
                }
                tracing::info!(url = %target, bytes = capture.bytes.len(), ms = started.elapsed().as_millis() as u64, "rendered");
                Ok((String::new(), capture.file_name.clone()))
            }
            Err(e) => {
                tracing::warn!(url = %target, code = e.code().as_str(), ms = started.elapsed().as_millis() as u64, "render failed: {e}");
                Ok((format!("[{}] {e}", e.code()), None))
            }
        }
    }
}

/// A forwarded header's values joined with `;`, as the official plugin did (Grafana sends a list per name).
fn header(headers: &HashMap<String, StringList>, name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.values.join(";"))
        .filter(|v| !v.is_empty())
}

/// A `/render` query from the fields that are set.
fn query(pairs: &[(&str, String)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty() && v != "0") {
        q.append_pair(k, v);
    }
    q.finish()
}

#[tonic::async_trait]
impl Renderer for PluginServices {
    async fn render(
        &self,
        request: Request<RenderRequest>,
    ) -> Result<Response<RenderResponse>, Status> {
        let r = request.into_inner();
        let token = self.authorize(&r.auth_token)?;
        let q = query(&[
            ("url", r.url.clone()),
            ("width", r.width.to_string()),
            ("height", r.height.to_string()),
            ("deviceScaleFactor", r.device_scale_factor.to_string()),
            ("renderKey", r.render_key.clone()),
            ("domain", r.domain.clone()),
            ("timeout", r.timeout.to_string()),
            ("timezone", r.timezone.clone()),
            ("encoding", r.encoding.clone()),
        ]);
        let (error, _) = self.run(token, q, &r.headers, &r.file_path, false).await?;
        Ok(Response::new(RenderResponse { error }))
    }

    async fn render_csv(
        &self,
        request: Request<RenderCsvRequest>,
    ) -> Result<Response<RenderCsvResponse>, Status> {
        let r = request.into_inner();
        let token = self.authorize(&r.auth_token)?;
        let q = query(&[
            ("url", r.url.clone()),
            ("renderKey", r.render_key.clone()),
            ("domain", r.domain.clone()),
            ("timeout", r.timeout.to_string()),
            ("timezone", r.timezone.clone()),
            ("filePath", r.file_path.clone()),
        ]);
        let (error, file_name) = self.run(token, q, &r.headers, &r.file_path, true).await?;
        Ok(Response::new(RenderCsvResponse {
            error,
            file_name: file_name.unwrap_or_default(),
        }))
    }
}

#[tonic::async_trait]
impl Diagnostics for PluginServices {
    async fn check_health(
        &self,
        _request: Request<CheckHealthRequest>,
    ) -> Result<Response<CheckHealthResponse>, Status> {
        let (status, message, version) = match self.service.browser_state() {
            BrowserState::Ready(b) => (HealthStatus::Ok, "Success".to_string(), b.version.clone()),
            BrowserState::Starting => (HealthStatus::Ok, "Success".into(), String::new()),
            BrowserState::Failed(e) => (HealthStatus::Error, e, String::new()),
            BrowserState::Stopped => (
                HealthStatus::Error,
                "Chromium is stopped".into(),
                String::new(),
            ),
        };
        let details = serde_json::json!({ "browserVersion": version }).to_string();
        Ok(Response::new(CheckHealthResponse {
            status: status as i32,
            message,
            json_details: details.into_bytes(),
        }))
    }

    async fn collect_metrics(
        &self,
        _request: Request<CollectMetricsRequest>,
    ) -> Result<Response<CollectMetricsResponse>, Status> {
        Ok(Response::new(CollectMetricsResponse {
            metrics: Some(Payload {
                prometheus: self.service.metrics_text().into_bytes(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl GrpcController for PluginServices {
    /// go-plugin sends no token with Shutdown (see [`super::output`]), so it is honoured only
    /// from a socket of this process's own user, as Grafana's is.
    async fn shutdown(&self, request: Request<Empty>) -> Result<Response<Empty>, Status> {
        let owner = match (request.local_addr(), request.remote_addr()) {
            (Some(local), Some(peer)) => {
                tokio::task::spawn_blocking(move || super::output::peer_uid(local, peer))
                    .await
                    .ok()
                    .flatten()
            }
            _ => None,
        };
        if owner != Some(super::output::own_uid()) {
            tracing::warn!(
                "refused go-plugin's Shutdown from a process of another user (or one that could not be identified): \
                 only Grafana, which started this plugin, may stop it"
            );
            return Err(Status::permission_denied(
                "Shutdown is only accepted from the user that started the plugin",
            ));
        }
        self.shutdown.notify_one();
        Ok(Response::new(Empty {}))
    }
}
