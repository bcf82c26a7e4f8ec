//! Runs the Grafana stand-in on its own, for benchmarks and manual checks.
//! Usage: `grafana-stub [ADDR] [RENDER_KEY]` (default 127.0.0.1:3000, no key check).

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let key = args.next();
    let addr = addr.parse().map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad address {addr}: {e}"),
        )
    })?;
    let stub = grafana_stub::GrafanaStub::start_on(addr, key.as_deref()).await?;
    println!("Grafana stand-in listening on http://{}", stub.addr);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
