//! The `grender` binary: plugin mode when Grafana started it as its renderer plugin, else the
//! command line.

use std::process::ExitCode;

fn main() -> ExitCode {
    grender::plugin::entry().unwrap_or_else(grender::cli::run)
}
