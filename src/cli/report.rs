//! `grender report list` and `grender report send NAME [--to ADDR]`: the reports of
//! `--reports FILE`, listed, or one sent now (to try it, or to resend it by hand).

use clap::{Args, ValueEnum};

use crate::config::ServerOptions;
use crate::report::Reports;

/// Options of `grender report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// list: each report's schedule and next run; send: render and e-mail one now.
    #[arg(value_enum)]
    pub action: ReportAction,
    /// The report to send.
    pub name: Option<String>,
    /// Send to this address instead of the report's recipients.
    #[arg(long)]
    pub to: Option<String>,
    #[command(flatten)]
    pub server: ServerOptions,
}

/// What `grender report` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportAction {
    List,
    Send,
}

/// Runs the command; returns the process exit code.
pub async fn run(args: ReportArgs) -> u8 {
    let Some(path) = args.server.reports_file.clone() else {
        eprintln!("grender: give the reports file with --reports FILE (or GRENDER_REPORTS)");
        return 2;
    };
    match args.action {
        ReportAction::List => match crate::report::list(&path) {
            Ok(table) => {
                print!("{table}");
                0
            }
            Err(e) => {
                eprintln!("grender: {e}");
                2
            }
        },
        ReportAction::Send => {
            let Some(name) = args.name.as_deref() else {
                eprintln!("grender: report send needs the report's name (see grender report list)");
                return 2;
            };
            let service = match super::start_service(&args.server).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("grender: {e}");
                    return 1;
                }
            };
            let code = match Reports::open(&path, service.clone()) {
                Ok(reports) => match reports.send_now(name, args.to.as_deref()).await {
                    Ok(done) => {
                        eprintln!("{done}");
                        0
                    }
                    Err(e) => {
                        eprintln!("grender: {e}");
                        1
                    }
                },
                Err(e) => {
                    eprintln!("grender: {e}");
                    2
                }
            };
            service.shutdown().await;
            code
        }
    }
}
