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
