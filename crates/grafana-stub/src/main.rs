//! Runs the Grafana stand-in on its own, for benchmarks and manual checks.
//! Usage: `grafana-stub [--frontend[=DIST]] [ADDR] [RENDER_KEY] [BUNDLE_KIB]`
//! (default 127.0.0.1:3000, no key check, an 8 MiB bundle). With `--frontend` the
//! dashboard routes serve the Grafana-frontend test app (`testapp/dist`, built by
//! `scripts/testapp.sh`, or DIST) instead of the stand-in's canvas page.

use std::path::PathBuf;

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, message)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut frontend: Option<Option<PathBuf>> = None;
    let mut positional = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "--frontend" {
            frontend = Some(None);
        } else if let Some(dist) = arg.strip_prefix("--frontend=") {
            frontend = Some(Some(PathBuf::from(dist)));
        } else {
            positional.push(arg);
        }
    }
    let mut args = positional.into_iter();
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let key = args.next().filter(|k| !k.is_empty() && k != "-");
    let bundle_kib = match args.next() {
        Some(kib) => kib
            .parse()
            .map_err(|e| invalid(format!("bad bundle size {kib}: {e}")))?,
        None => 8 * 1024,
    };
    let addr = addr
        .parse()
        .map_err(|e| invalid(format!("bad address {addr}: {e}")))?;
    let options = grafana_stub::StubOptions {
        render_key: key,
        bundle_kib,
    };
    let stub = match frontend {
        None => grafana_stub::GrafanaStub::start_on(addr, options).await?,
        Some(dist) => {
            let dist = dist.or_else(grafana_stub::frontend_dist).ok_or_else(|| {
                invalid("the test app is not built: run scripts/testapp.sh".into())
            })?;
            println!(
                "Serving the Grafana-frontend test app from {}",
                dist.display()
            );
            grafana_stub::GrafanaStub::start_on_frontend(addr, options, &dist).await?
        }
    };
    println!("Grafana stand-in listening on http://{}", stub.addr);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
