//! The CDP floor: the fastest a warm Chromium can render a page, with no service around it.
//!
//! One tab, reused: navigate, wait for the same readiness signal grender waits for, capture
//! a PNG (early, while the last quiet frames pass, as grender does); repeat. Benchmarks divide grender's latency by this one's, measured in the same run.
//!
//! Usage: `cdp_floor URL N [WIDTH HEIGHT] [RENDER_KEY DOMAIN]`; prints one latency (ms) per line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::network::SetCookieParams;
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, CaptureScreenshotFormat, CaptureScreenshotParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EventBindingCalled;
use chromiumoxide::handler::HandlerConfig;
use futures::StreamExt;
use grender::browser::launch::{LaunchOptions, launch};
use grender::cli::{Cli, Command};
use grender::page::ReadinessOptions;
use grender::page::{early_capture, navigate, readiness};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .ok_or("usage: cdp_floor URL N [WIDTH HEIGHT] [RENDER_KEY DOMAIN]")?
        .clone();
    let n: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let width: u32 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let height: u32 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(500);

    let Command::Server(opts) = Cli::parse_args(["grender", "server", "--config=/dev/null"])?
        .0
        .command
    else {
        return Err("a server command line".into());
    };
    let launch_opts = LaunchOptions {
        path: grender::browser::launch::find_chromium(opts.browser.path.as_deref())?,
        extra_flags: vec![],
        timezone: opts.browser.default_timezone(),
        launch_timeout: Duration::from_secs(20),
        ca_file: None,
        sandbox: opts.browser.sandbox,
    };
    let (mut process, ws) = launch(&launch_opts).await?;
    let config = HandlerConfig {
        viewport: None,
        request_timeout: Duration::from_secs(120),
        ..HandlerConfig::default()
    };
    let (browser, mut handler) = chromiumoxide::Browser::connect_with_config(ws, config).await?;
    let handler = tokio::spawn(async move { while let Some(Ok(_)) = handler.next().await {} });

    let mut page = new_tab(&browser, width, height).await?;
    if let (Some(key), Some(domain)) = (args.get(4), args.get(5)) {
        let cookie = SetCookieParams::builder()
            .name("renderKey")
            .value(key.clone())
            .domain(domain.clone())
            .build()?;
        page.execute(cookie).await?;
    }
    let ready = ReadinessOptions {
        timeout: Duration::from_secs(30),
        first_signal_grace: Duration::from_secs(3),
    };
    let mut no_bindings = futures::stream::pending::<Arc<EventBindingCalled>>();
    for _ in 0..n {
        let started = Instant::now();
        // grender's own navigation wait (the CDP client's alone sometimes never ends).
        let loaded = navigate::goto(&page, url.as_str())
            .await
            .map_err(|e| e.reason().to_string())?;
        let until = tokio::time::Instant::now() + ready.timeout;
        // With grender's early capture: the picture is taken while the last quiet frames
        // pass, and again after them if the page changed meanwhile.
        let ready_now = readiness::wait(&page, &mut no_bindings, ready, until, None, true).await?;
        let shot = || async {
            let shot = CaptureScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .from_surface(true)
                .build();
            page.execute(shot)
                .await
                .map_err(|e| grender::error::RenderError::cdp("capturing", e))
        };
        let kept = ready_now.early
            && early_capture::capture(&page, until, shot())
                .await?
                .is_some();
        if !kept {
            if ready_now.early {
                readiness::wait(&page, &mut no_bindings, ready, until, None, false).await?;
            }
            shot().await?;
        }
        println!("{:.1}", started.elapsed().as_secs_f64() * 1000.0);
        if loaded == navigate::Loaded::ByLifecycle {
            // The client still waits for that navigation: the tab is replaced, as grender does.
            page = new_tab(&browser, width, height).await?;
        }
    }
    drop(browser);
    handler.abort();
    process.kill_tree();
    Ok(())
}

/// A blank tab at the picture's size, noting Grafana's queries as grender's tabs do.
async fn new_tab(
    browser: &chromiumoxide::Browser,
    width: u32,
    height: u32,
) -> Result<chromiumoxide::Page, Box<dyn std::error::Error>> {
    let page = browser.new_page("about:blank").await?;
    page.execute(SetDeviceMetricsOverrideParams::new(
        width, height, 1.0, false,
    ))
    .await?;
    page.execute(AddScriptToEvaluateOnNewDocumentParams::new(
        readiness::TRACK_QUERIES_JS,
    ))
    .await?;
    Ok(page)
}
