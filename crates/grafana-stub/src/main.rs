//! Runs the Grafana stand-in on its own, for benchmarks and manual checks.
//! Usage: `grafana-stub [ADDR] [RENDER_KEY] [BUNDLE_KIB]`
//! (default 127.0.0.1:3000, no key check, an 8 MiB bundle).

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let key = args.next().filter(|k| !k.is_empty() && k != "-");
    let bundle_kib = match args.next() {
        Some(kib) => kib.parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("bad bundle size {kib}: {e}"),
            )
        })?,
        None => 8 * 1024,
    };
    let addr = addr.parse().map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad address {addr}: {e}"),
        )
    })?;
    let stub = grafana_stub::GrafanaStub::start_on(
        addr,
        grafana_stub::StubOptions {
            render_key: key,
            bundle_kib,
        },
    )
    .await?;
    println!("Grafana stand-in listening on http://{}", stub.addr);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
