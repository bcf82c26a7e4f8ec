//! Prometheus metrics under the official services' names — the Go service's
//! and the Node service's, so both published dashboards keep working — plus
//! grender's own (queue, coalescing, browser restarts, Chromium memory).

use std::time::Duration;

use crate::stage::Stage;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder, exponential_buckets,
};

/// Every metric grender exports, in one private registry.
pub struct Metrics {
    registry: Registry,
    // The Go service's names.
    pub http_request_duration: HistogramVec,
    pub http_response_size: HistogramVec,
    pub http_requests_in_flight: IntGauge,
    pub auth_attempts: IntCounterVec,
    pub token_usage: IntCounterVec,
    pub trusted_url: IntCounterVec,
    pub rate_limiter: IntCounterVec,
    pub browser_render_duration: Histogram,
    pub browser_instances_active: IntGauge,
    pub readiness_mode: IntCounterVec,
    // The Node service's names.
    pub node_request_duration: HistogramVec,
    pub node_in_flight: IntGauge,
    pub node_browser_info: IntGaugeVec,
    pub node_step_duration: HistogramVec,
    // grender's own.
    pub queue_waiting: IntGauge,
    pub queue_in_flight: IntGauge,
    pub queue_wait_seconds: prometheus::Counter,
    pub queue_refused: IntCounter,
    pub coalesced: IntCounter,
    pub browser_renders: IntCounter,
    pub browser_launches: IntCounter,
    pub browser_contexts_opened: IntCounter,
    pub browser_tabs: IntGaugeVec,
    pub app_reuse: IntCounterVec,
    pub early_capture: IntCounterVec,
    pub chromium_rss: IntGauge,
    pub errors: IntCounterVec,
    pub limits_refused: IntCounterVec,
    pub reports: IntCounterVec,
}

fn seconds(name: &str, help: &str, buckets: Vec<f64>) -> HistogramOpts {
    HistogramOpts::new(name, help)
        .const_label("unit", "seconds")
        .buckets(buckets)
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_labels = ["method", "path", "status_code", "encoding", "mode"];
        let go_buckets = vec![
            0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
        ];
        let m = Metrics {
            http_request_duration: HistogramVec::new(
                seconds(
                    "http_request_duration",
                    "Duration of HTTP requests.",
                    go_buckets,
                ),
                &http_labels,
            )?,
            http_response_size: HistogramVec::new(
                HistogramOpts::new("http_response_size", "Size of HTTP responses.")
                    .const_label("unit", "bytes")
                    .buckets(exponential_buckets(2048.0, 2.0, 20)?),
                &http_labels,
            )?,
            http_requests_in_flight: IntGauge::new(
                "http_requests_in_flight",
                "Render requests being served.",
            )?,
            auth_attempts: IntCounterVec::new(
                Opts::new(
                    "http_authenticated_request_attempts_total",
                    "Authentication attempts by result.",
                ),
                &["result"],
            )?,
            token_usage: IntCounterVec::new(
                Opts::new(
                    "http_authentication_token_usage_total",
                    "Requests per accepted token (by index).",
                ),
                &["token_index"],
            )?,
            trusted_url: IntCounterVec::new(
                Opts::new("http_trusted_url_requests_total", "URL checks by result."),
                &["result"],
            )?,
            rate_limiter: IntCounterVec::new(
                Opts::new("http_rate_limiter_requests_total", "Admission decisions."),
                &["result", "why"],
            )?,
            browser_render_duration: Histogram::with_opts(seconds(
                "browser_render_duration",
                "Time spent rendering in the browser.",
                vec![0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 605.0],
            ))?,
            browser_instances_active: IntGauge::new(
                "browser_instances_active",
                "Chromium processes ready to render.",
            )?,
            readiness_mode: IntCounterVec::new(
                Opts::new(
                    "browser_readiness_mode_total",
                    "How pages said they were ready.",
                ),
                &["mode"],
            )?,
            node_request_duration: HistogramVec::new(
                HistogramOpts::new(
                    "grafana_image_renderer_service_http_request_duration_seconds",
                    "Duration of render requests (Node service name).",
                )
                .buckets(vec![0.5, 1.0, 3.0, 5.0, 7.0, 10.0, 20.0, 30.0, 60.0]),
                &["status_code"],
            )?,
            node_in_flight: IntGauge::new(
                "grafana_image_renderer_http_request_in_flight",
                "Render requests being served (Node service name).",
            )?,
            node_browser_info: IntGaugeVec::new(
                Opts::new("grafana_image_renderer_browser_info", "The browser in use."),
                &["version"],
            )?,
            node_step_duration: HistogramVec::new(
                HistogramOpts::new(
                    "grafana_image_renderer_step_duration_seconds",
                    "Duration of render steps.",
                )
                .buckets(vec![0.1, 0.3, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0]),
                &["step"],
            )?,
            queue_waiting: IntGauge::new(
                "grender_queue_waiting",
                "Requests waiting for a render slot.",
            )?,
            queue_in_flight: IntGauge::new("grender_renders_in_flight", "Renders running now.")?,
            queue_wait_seconds: prometheus::Counter::new(
                "grender_queue_wait_seconds_total",
                "Time requests spent waiting for a render slot.",
            )?,
            queue_refused: IntCounter::new(
                "grender_queue_refused_total",
                "Requests refused at arrival (429).",
            )?,
            coalesced: IntCounter::new(
                "grender_coalesced_requests_total",
                "Requests answered by an identical render.",
            )?,
            app_reuse: IntCounterVec::new(
                Opts::new(
                    "grender_app_reuse_total",
                    "Renders by whether they reused a loaded Grafana app (outcome: reused, cold, fallback) and why not (reason).",
                ),
                &["outcome", "reason"],
            )?,
            early_capture: IntCounterVec::new(
                Opts::new(
                    "grender_early_capture_total",
                    "Pictures taken while the page's last quiet frames passed, by whether they were kept or thrown away because the page changed (outcome: kept, discarded).",
                ),
                &["outcome"],
            )?,
            browser_renders: IntCounter::new(
                "grender_browser_renders_total",
                "Renders that reached the browser.",
            )?,
            browser_launches: IntCounter::new(
                "grender_browser_launches_total",
                "Chromium launches since start.",
            )?,
            browser_contexts_opened: IntCounter::new(
                "grender_browser_contexts_opened_total",
                "Browser contexts opened (each with a cold HTTP cache); flat while renders reuse warm tabs.",
            )?,
            browser_tabs: IntGaugeVec::new(
                Opts::new(
                    "grender_browser_tabs",
                    "Chromium's tabs, each a renderer process, by state (idle: waiting for any render; parked: an app kept for its viewer; busy: rendering, opening or being scrubbed; dormant: a context kept for its cache without a tab).",
                ),
                &["state"],
            )?,
            chromium_rss: IntGauge::new(
                "grender_chromium_rss_bytes",
                "Resident memory of the Chromium tree.",
            )?,
            errors: IntCounterVec::new(
                Opts::new("grender_errors_total", "Failed requests by error code."),
                &["code"],
            )?,
            limits_refused: IntCounterVec::new(
                Opts::new(
                    "grender_requests_refused_total",
                    "Requests or connections refused by an HTTP server limit, by the option's name.",
                ),
                &["limit"],
            )?,
            reports: IntCounterVec::new(
                Opts::new(
                    "grender_reports_total",
                    "Scheduled report runs by report and outcome (sent; retrying: an attempt failed and will be tried again; failed: the run gave up; missed: due while the service was down for longer than catch_up).",
                ),
                &["report", "outcome"],
            )?,
            registry,
        };
        macro_rules! register {
            ($($metric:ident),*) => { $( m.registry.register(Box::new(m.$metric.clone()))?; )* };
        }
        register!(
            http_request_duration,
            http_response_size,
            http_requests_in_flight,
            auth_attempts,
            token_usage,
            trusted_url,
            rate_limiter,
            browser_render_duration,
            browser_instances_active,
            readiness_mode,
            node_request_duration,
            node_in_flight,
            node_browser_info,
            node_step_duration,
            queue_waiting,
            queue_in_flight,
            queue_wait_seconds,
            queue_refused,
            coalesced,
            browser_renders,
            browser_launches,
            browser_contexts_opened,
            browser_tabs,
            app_reuse,
            early_capture,
            chromium_rss,
            errors,
            limits_refused,
            reports
        );
        m.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        // Process-wide: the CDP client reports these outside any one service.
        m.registry
            .register(Box::new(crate::cdp_health::UNPARSED.clone()))?;
        m.registry
            .register(Box::new(crate::cdp_health::NAVIGATION_RESCUES.clone()))?;
        Ok(m)
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    /// Records one answered render request.
    pub fn observe_request(
        &self,
        path: &str,
        status: u16,
        encoding: &str,
        mode: &str,
        took: Duration,
        bytes: usize,
    ) {
        let status = status.to_string();
        let labels = ["GET", path, status.as_str(), encoding, mode];
        self.http_request_duration
            .with_label_values(&labels)
            .observe(took.as_secs_f64());
        self.http_response_size
            .with_label_values(&labels)
            .observe(bytes as f64);
        self.node_request_duration
            .with_label_values(&[status.as_str()])
            .observe(took.as_secs_f64());
    }

    /// Records the time spent in each render step, under the Node service's step names.
    pub fn observe_steps(&self, steps: &[(Stage, Duration)]) {
        for (stage, took) in steps {
            self.node_step_duration
                .with_label_values(&[stage.step_label()])
                .observe(took.as_secs_f64());
        }
    }
}

/// Counts requests in flight for both services' gauges.
pub struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    /// Counts one request until dropped.
    pub fn start(m: &'a Metrics) -> Self {
        m.http_requests_in_flight.inc();
        m.node_in_flight.inc();
        InFlight(m)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.http_requests_in_flight.dec();
        self.0.node_in_flight.dec();
    }
}
