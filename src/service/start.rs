//! Building the service from its options: the one place where configuration becomes running
//! parts (browser supervisor, renderer, request limits, tokens, metrics).

use std::sync::Arc;
use std::time::Duration;

use super::Service;
use super::auth::TokenCheck;
use crate::browser::{BrowserOptions, BrowserSupervisor, LaunchOptions};
use crate::config::{ConfigError, Isolation, ServerOptions};
use crate::metrics::Metrics;
use crate::page::{PageOptions, guard::OriginPolicy};
use crate::render::Renderer;
use crate::request::Limits;

/// How long Chromium may take to open its DevTools socket.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);

impl Service {
    /// Checks the options, finds Chromium and starts its supervisor (the first launch runs in
    /// the background; see [`Service::wait_started`]). Must run inside a tokio runtime.
    pub fn start(opts: &ServerOptions) -> Result<Arc<Service>, ConfigError> {
        opts.validate()?;
        let path = crate::browser::launch::find_chromium(opts.browser.path.as_deref())
            .map_err(ConfigError)?;
        let metrics = Arc::new(Metrics::new().map_err(|e| ConfigError(format!("metrics: {e}")))?);
        let timezone = opts.browser.default_timezone();
        let plan = opts.memory_plan();
        if let Some(line) = plan.summary() {
            if plan.is_tight() {
                tracing::warn!("{line}");
            } else {
                tracing::info!("{line}");
            }
        }
        let concurrency = plan.concurrency;
        // A fresh Chromium per render has no app to keep.
        let reuse_app = opts.render.reuse_app && opts.render.isolation == Isolation::Context;
        let browsers = BrowserSupervisor::start(BrowserOptions {
            launch: LaunchOptions {
                path,
                extra_flags: {
                    let user = opts.browser.split_flags();
                    let mut flags = plan.chromium_flags(&user);
                    flags.extend(user);
                    flags
                },
                timezone: timezone.clone(),
                launch_timeout: LAUNCH_TIMEOUT,
                ca_file: opts.browser.ca_file.clone(),
                sandbox: opts.browser.sandbox,
            },
            context_reuse: opts.browser.context_reuse,
            tabs: concurrency,
            // Room for half as many parked apps as render slots (docs/adr/0013), unless a
            // memory budget counts every tab.
            parked_tabs: if reuse_app && opts.browser.memory_budget_mib == 0 {
                concurrency.div_ceil(2)
            } else {
                0
            },
            process_per_render: opts.render.isolation == Isolation::Process,
            recycle_after: opts.browser.recycle_after,
            memory_budget_mib: opts.browser.memory_budget_mib,
            tab_setup: Arc::new(crate::page::tab_setup()),
            idle_timeout: opts.browser.idle_timeout,
            close_last_after: opts.browser.idle_close_last,
            launches: metrics.browser_launches.clone(),
            contexts_opened: metrics.browser_contexts_opened.clone(),
        });
        let allowed_origins = opts.server.allowed_origins();
        let page = PageOptions {
            default_timezone: timezone,
            max_pixels: opts.render.max_pixels,
            max_csv_bytes: opts.render.max_csv_bytes,
            origins: OriginPolicy {
                allowed: allowed_origins.clone(),
                block_other_hosts: opts.server.block_other_hosts,
            },
            reuse_app,
        };
        let renderer = Arc::new(Renderer::new(
            browsers.clone(),
            concurrency,
            opts.render.queue_size,
            page,
            metrics.clone(),
        ));
        let limits = Limits::from_options(opts, allowed_origins)?;
        Ok(Arc::new(Service {
            renderer,
            browsers,
            tokens: TokenCheck::new(&opts.server.auth_tokens, opts.server.allow_missing_token),
            limits,
            metrics,
        }))
    }
}
