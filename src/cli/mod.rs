//! The one-shot subcommands: `grender render` and `grender doctor`.

pub mod doctor;
pub mod render;

use crate::Service;
use crate::config::ServerOptions;

/// Starts a service (browser only, no HTTP) for a one-shot command.
pub async fn start_service(opts: &ServerOptions) -> Result<Service, String> {
    let service = Service::start(opts).map_err(|e| e.to_string())?;
    service
        .browsers
        .wait_started()
        .await
        .map_err(|e| format!("Chromium could not be started: {e}"))?;
    Ok(service)
}

/// Whether standard error is a terminal (for progress lines).
pub fn stderr_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

/// `grender healthcheck`: GET /healthz of the service at server.addr; 0 when it says OK.
/// Over HTTPS when the service serves it (without verifying its certificate, as the
/// official healthcheck does: it only asks whether this very service answers).
pub async fn healthcheck(opts: &ServerOptions) -> u8 {
    let mut addr = opts.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    if opts.certificate_file.is_some() {
        return match crate::tls::insecure_get_status(addr, "/healthz").await {
            Ok(200) => 0,
            Ok(status) => {
                eprintln!("grender: https://{addr}/healthz answered {status}");
                1
            }
            Err(e) => {
                eprintln!("grender: https://{addr}/healthz is not reachable: {e}");
                1
            }
        };
    }
    let url = format!("http://{addr}/healthz");
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("grender: {e}");
            return 1;
        }
    };
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => 0,
        Ok(r) => {
            eprintln!("grender: {url} answered {}", r.status());
            1
        }
        Err(e) => {
            eprintln!("grender: {url} is not reachable: {e}");
            1
        }
    }
}

/// `grender print-config`: every option with its value and source; tokens masked.
pub fn print_config(sources: &[crate::config::OptionSource]) {
    let width = sources.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in sources {
        let value = if s.name == "server.auth-token" && !s.value.is_empty() {
            let count = s.value.split(',').count();
            format!("<{count} secret{}>", if count == 1 { "" } else { "s" })
        } else {
            s.value.clone()
        };
        println!("--{:width$} = {:30} ({})", s.name, value, s.source);
    }
}
