//! `grender render URL -o FILE`: one render from the command line, with the HTTP API's
//! options, a progress line on a terminal, and a clear error and exit code 1 on failure.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::config::ServerOptions;
use crate::service::Route;

/// Options of `grender render`.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The Grafana page to render (http or https).
    pub url: String,
    /// Where to write the picture; `.pdf`, `.jpg`/`.jpeg` and `.webp` select their encoding
    /// unless --encoding says otherwise.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// png, pdf, jpeg or webp (default: from the output file's extension).
    #[arg(long)]
    pub encoding: Option<String>,
    #[arg(long)]
    pub width: Option<i64>,
    /// -1 (or absent) for the full page.
    #[arg(long, allow_negative_numbers = true)]
    pub height: Option<i64>,
    /// Device scale factor.
    #[arg(long)]
    pub scale: Option<f64>,
    /// IANA time zone of the render.
    #[arg(long = "timezone")]
    pub render_timezone: Option<String>,
    /// Seconds or a duration such as 90s.
    #[arg(long, default_value = "60")]
    pub timeout: String,
    /// Accept-Language for the page.
    #[arg(long)]
    pub language: Option<String>,
    /// A Grafana render key, set as the renderKey cookie for --domain.
    #[arg(long = "render-key", requires = "domain")]
    pub render_key: Option<String>,
    /// Cookie domain of --render-key (Grafana's host name).
    #[arg(long)]
    pub domain: Option<String>,
    /// A Grafana service-account token, sent as `Authorization: Bearer` to the target's origin only.
    #[arg(long = "grafana-token", env = "GRAFANA_TOKEN")]
    pub grafana_token: Option<String>,
    /// PDF paper: letter, legal, tabloid, ledger, a0–a6.
    #[arg(long = "pdf-format")]
    pub pdf_format: Option<String>,
    /// PDF orientation.
    #[arg(long = "pdf-landscape")]
    pub pdf_landscape: Option<bool>,
    /// JPEG / WebP quality, 1–100.
    #[arg(long)]
    pub quality: Option<u8>,
    /// Lossless PNG recompression.
    #[arg(long)]
    pub optimize: bool,
    /// A palette PNG with at most this many colours (2–256).
    #[arg(long)]
    pub colors: Option<u16>,
    /// Downscale to this width in pixels.
    #[arg(long)]
    pub thumbnail: Option<u32>,
    /// Grey levels only, for e-paper displays.
    #[arg(long)]
    pub greyscale: bool,
    #[command(flatten)]
    pub server: ServerOptions,
}

/// Runs the command; returns the process exit code.
pub async fn run(args: RenderArgs) -> u8 {
    let encoding = args.encoding.clone().unwrap_or_else(|| {
        let ext = args
            .output
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some(e @ ("pdf" | "webp" | "jpeg")) => e.into(),
            Some("jpg") => "jpeg".into(),
            _ => "png".into(),
        }
    });
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("url", &args.url)
        .append_pair("encoding", &encoding)
        .append_pair("timeout", &args.timeout);
    let optional = [
        ("width", args.width.map(|v| v.to_string())),
        ("height", args.height.map(|v| v.to_string())),
        ("deviceScaleFactor", args.scale.map(|v| v.to_string())),
        ("timezone", args.render_timezone.clone()),
        ("renderKey", args.render_key.clone()),
        ("domain", args.domain.clone()),
        ("pdf.format", args.pdf_format.clone()),
        ("pdf.landscape", args.pdf_landscape.map(|v| v.to_string())),
        ("quality", args.quality.map(|v| v.to_string())),
        ("optimize", args.optimize.then(|| "true".into())),
        ("colors", args.colors.map(|v| v.to_string())),
        ("thumbnail", args.thumbnail.map(|v| v.to_string())),
        ("greyscale", args.greyscale.then(|| "true".into())),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            query.append_pair(k, &v);
        }
    }
    let service = match super::start_service(&args.server).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("grender: {e}");
            return 1;
        }
    };
    let mut req = match service.parse(
        Route::CommandLine,
        &query.finish(),
        args.language.as_deref(),
    ) {
        Ok(req) => req,
        Err(e) => {
            eprintln!("grender: {e}");
            service.shutdown().await;
            return 2;
        }
    };
    if let Some(token) = &args.grafana_token {
        req.extra_headers
            .push(("Authorization".into(), format!("Bearer {token}")));
    }
    let started = Instant::now();
    let spinner = super::stderr_is_terminal().then(|| tokio::spawn(spin(started)));
    let outcome = service.render(req, None, Route::CommandLine).await;
    if let Some(spinner) = spinner {
        spinner.abort();
        eprint!("\r\x1b[2K");
    }
    let code = match outcome {
        Ok(capture) => match std::fs::write(&args.output, &capture.bytes) {
            Ok(()) => {
                eprintln!(
                    "wrote {} ({} bytes, {:.1}s, readiness: {})",
                    args.output.display(),
                    capture.bytes.len(),
                    started.elapsed().as_secs_f64(),
                    capture.mode.label()
                );
                0
            }
            Err(e) => {
                eprintln!("grender: cannot write {}: {e}", args.output.display());
                1
            }
        },
        Err(e) => {
            eprintln!("grender: [{}] {e}", e.code());
            1
        }
    };
    service.shutdown().await;
    code
}

async fn spin(started: Instant) {
    const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut i = 0;
    loop {
        eprint!(
            "\r{} waiting for the panels to render… {:.1}s",
            FRAMES[i % FRAMES.len()],
            started.elapsed().as_secs_f64()
        );
        i += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
