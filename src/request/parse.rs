//! Turning `/render` query parameters into a typed [`RenderRequest`], the way the
//! official Go service reads them, with clear 400/403 messages.

use std::time::Duration;

use crate::config::{
    ConfigError, DefaultEncoding, RequestDefaultsByUrl, ServerOptions, parse_duration,
};
use crate::error::ErrorCode;
use crate::output::pdf::{self, PdfOptions};
use crate::output::picture::{PictureFormat, PictureOptions};
use crate::output::{Encoding, Output};
use crate::request::{Deadline, ReadinessOptions, RenderCookie, RenderRequest, Viewport};

/// Server-side bounds and defaults applied to every request, resolved at start-up.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Viewport and readiness defaults, per URL pattern (browser.* and browser.override).
    pub defaults: RequestDefaultsByUrl,
    /// Used when `encoding` is empty.
    pub default_encoding: DefaultEncoding,
    /// Deadline of requests without a `timeout`.
    pub default_timeout: Duration,
    /// render.max-timeout: longer `timeout`s are clamped to it.
    pub max_timeout: Duration,
    /// render.max-pdf-pages: longer PDFs are refused with 413.
    pub max_pdf_pages: u32,
    pub max_pixels: u64,
    /// render.optimize-png: recompress PNGs unless a request says `optimize=false`.
    pub optimize_png: bool,
    /// `scheme://host:port` origins allowed as targets; empty allows all.
    pub allowed_origins: Vec<url::Origin>,
}

impl Limits {
    /// The limits `opts` set (with `allowed_origins` already parsed from them).
    pub fn from_options(
        opts: &ServerOptions,
        allowed_origins: Vec<url::Origin>,
    ) -> Result<Self, ConfigError> {
        Ok(Limits {
            defaults: opts.request_defaults_by_url()?,
            default_encoding: opts.server.default_encoding,
            default_timeout: opts.render.default_timeout,
            max_timeout: opts.render.max_timeout,
            max_pdf_pages: opts.render.max_pdf_pages,
            max_pixels: opts.render.max_pixels,
            optimize_png: opts.render.optimize_png,
            allowed_origins,
        })
    }
}

impl Default for Limits {
    /// The defaults of `grender server`.
    fn default() -> Self {
        Limits {
            defaults: RequestDefaultsByUrl::default(),
            default_encoding: DefaultEncoding::Png,
            default_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(300),
            max_pdf_pages: 100,
            max_pixels: 60_000_000,
            optimize_png: false,
            allowed_origins: vec![],
        }
    }
}

/// Why a request was refused before rendering.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// No `url` at all.
    #[error("missing 'url' query parameter")]
    MissingUrl,
    /// A `url` that does not parse.
    #[error("Invalid URL in query: {0}")]
    InvalidUrl(String),
    /// 403: the URL may not be rendered (scheme or origin).
    #[error("{0}")]
    Forbidden(String),
    /// 400: another parameter is missing or malformed.
    #[error("{0}")]
    Bad(String),
}

impl ParamError {
    /// The code of the answer: 403 for a forbidden URL, else 400.
    pub fn code(&self) -> ErrorCode {
        match self {
            ParamError::Forbidden(_) => ErrorCode::ForbiddenUrl,
            _ => ErrorCode::BadRequest,
        }
    }

    /// The `result` label of `http_trusted_url_requests_total` (the Go service's).
    pub fn url_check(&self) -> &'static str {
        match self {
            ParamError::MissingUrl => "missing-query",
            ParamError::InvalidUrl(_) => "invalid-url",
            ParamError::Forbidden(_) => "invalid-protocol",
            // The URL itself was fine.
            ParamError::Bad(_) => "valid",
        }
    }
}

/// The decoded `name=value` pairs of a query string.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The first value of `name`, as Go's `Query().Get` reads it.
fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Parses the query of `/render`.
pub fn parse_render_query(
    query: &str,
    accept_language: Option<&str>,
    limits: &Limits,
) -> Result<RenderRequest, ParamError> {
    let pairs = query_pairs(query);
    let get = |name: &str| first(&pairs, name);
    let bad = |m: String| Err(ParamError::Bad(m));

    let url = check_url(get("url"), &limits.allowed_origins)?;
    let d = limits.defaults.for_url(&url);

    let asked = get("encoding").unwrap_or("").trim().to_ascii_lowercase();
    let encoding = match Encoding::parse(&asked) {
        _ if asked.is_empty() => match limits.default_encoding {
            DefaultEncoding::Png => Encoding::Png,
            DefaultEncoding::Pdf => Encoding::Pdf,
        },
        Some(e) if e != Encoding::Csv => e,
        _ => {
            return bad(format!(
                "invalid 'encoding' query parameter: {asked:?} (use png, pdf, jpeg or webp)"
            ));
        }
    };

    let int = |name: &str| -> Result<Option<i64>, ParamError> {
        match get(name).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ParamError::Bad(format!(
                    "invalid '{name}' query parameter: {v:?} is not an integer"
                ))
            }),
        }
    };
    let clamp = |v: i64, min: i64, max: i64| {
        if max >= 0 {
            v.clamp(min, max.max(min))
        } else {
            v.max(min)
        }
    };
    let width = match int("width")? {
        None | Some(-1) => d.min_width,
        Some(w) => clamp(w, d.min_width, d.max_width),
    };
    let initial_height = clamp(width * 3 / 4, d.min_height, d.max_height);
    let height = match int("height")? {
        None | Some(-1) => None,
        Some(h) => Some(clamp(h, d.min_height, d.max_height)),
    };

    let scale = match get("deviceScaleFactor")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => d.page_scale_factor,
        Some(v) => match v.parse::<f64>() {
            Ok(s) if s.is_nan() => {
                return bad(format!(
                    "invalid 'deviceScaleFactor' query parameter: {v:?}"
                ));
            }
            Ok(s) if s <= 0.0 => {
                return bad(format!(
                    "invalid request: deviceScaleFactor {v} is not allowed; page scale factor must be positive"
                ));
            }
            Ok(s) => s.min(d.max_page_scale_factor),
            Err(_) => {
                return bad(format!(
                    "invalid 'deviceScaleFactor' query parameter: {v:?} is not a number"
                ));
            }
        },
    };
    if let Some(h) = height {
        let pixels = width as f64 * h as f64 * scale * scale;
        if pixels > limits.max_pixels as f64 {
            return bad(format!(
                "the picture would have {:.0} million pixels ({width}×{h} at scale {scale}), above render.max-pixels ({:.0} million)",
                pixels / 1e6,
                limits.max_pixels as f64 / 1e6
            ));
        }
    }

    let timeout = parse_timeout(get("timeout"), limits)?;

    let landscape = match get("landscape") {
        Some(v) => v == "true",
        None => !d.portrait,
    };
    let output = match picture_options(&pairs, encoding, limits.optimize_png)? {
        Some(picture) => Output::Picture(picture),
        None if encoding == Encoding::Pdf => {
            // Checked now, so a scale Chromium cannot print is a 400 before any navigation.
            pdf::print_scale(scale).map_err(ParamError::Bad)?;
            Output::Pdf(pdf_options(&pairs, &url, landscape, limits.max_pdf_pages)?)
        }
        None => Output::Png,
    };
    let timezone = get("timezone")
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from);
    let cookie = render_cookie(get("renderKey"), get("domain"));

    Ok(RenderRequest {
        url,
        viewport: Viewport {
            width: width.clamp(1, u32::MAX as i64) as u32,
            height: height.map(|h| h.clamp(1, u32::MAX as i64) as u32),
            initial_height: initial_height.clamp(1, u32::MAX as i64) as u32,
            scale,
            landscape,
        },
        timezone,
        cookie,
        accept_language: accept_language
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from),
        output,
        extra_headers: Vec::new(),
        priority: Default::default(),
        fetch_title: false,
        readiness: readiness_of(d),
        deadline: Deadline::after(timeout),
    })
}

/// A true/false (or 1/0) query parameter; None when absent.
fn parse_flag(name: &str, value: Option<&str>) -> Result<Option<bool>, ParamError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(other) => Err(ParamError::Bad(format!(
            "invalid '{name}' query parameter: {other:?} (use true or false)"
        ))),
    }
}

/// Query parameters of the opt-in smaller pictures.
const PICTURE_PARAMS: [&str; 6] = [
    "quality",
    "optimize",
    "colors",
    "thumbnail",
    "greyscale",
    "grayscale",
];

/// The opt-in picture options; None for Chromium's plain PNG (and for PDFs).
fn picture_options(
    pairs: &[(String, String)],
    encoding: Encoding,
    default_optimize: bool,
) -> Result<Option<PictureOptions>, ParamError> {
    let get = |name: &str| first(pairs, name).map(str::trim).filter(|v| !v.is_empty());
    let bad = |m: String| Err(ParamError::Bad(m));
    let Some(format) = encoding.picture_format() else {
        if let Some(name) = PICTURE_PARAMS.iter().find(|n| get(n).is_some()) {
            return bad(format!(
                "the '{name}' query parameter applies to pictures (png, jpeg, webp), not to {}",
                encoding.name()
            ));
        }
        return Ok(None);
    };
    let flag = |name: &str| parse_flag(name, get(name));
    let ranged = |name: &str, min: u32, max: u32| -> Result<Option<u32>, ParamError> {
        match get(name) {
            None => Ok(None),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ParamError::Bad(format!(
                    "invalid '{name}' query parameter: {v:?} (use a whole number from {min} to {max})"
                ))),
            },
        }
    };
    let quality = ranged("quality", 1, 100)?.map(|q| q as u8);
    let colors = ranged("colors", 2, 256)?.map(|c| c as u16);
    let thumbnail = ranged("thumbnail", 16, 4096)?;
    let greyscale = flag("greyscale")?.or(flag("grayscale")?).unwrap_or(false);
    let optimize = flag("optimize")?.unwrap_or(default_optimize);
    if format == PictureFormat::Png && quality.is_some() {
        return bad(
            "the 'quality' query parameter applies to jpeg and webp; for smaller PNGs use optimize=true or colors=256"
                .into(),
        );
    }
    if format != PictureFormat::Png && colors.is_some() {
        return bad("the 'colors' query parameter applies to png".into());
    }
    let plain = format == PictureFormat::Png
        && !optimize
        && colors.is_none()
        && thumbnail.is_none()
        && !greyscale;
    if plain {
        return Ok(None);
    }
    Ok(Some(PictureOptions {
        format,
        quality,
        optimize: optimize && format == PictureFormat::Png,
        colors,
        thumbnail,
        greyscale,
    }))
}

/// Parses the `/render/csv` query: the same url, timeout, time zone, render key
/// and language rules as `/render`, `encoding` empty or `csv`, and an optional download name.
pub fn parse_csv_query(
    query: &str,
    accept_language: Option<&str>,
    limits: &Limits,
) -> Result<RenderRequest, ParamError> {
    let pairs = query_pairs(query);
    let get = |name: &str| first(&pairs, name);
    let url = check_url(get("url"), &limits.allowed_origins)?;
    let d = limits.defaults.for_url(&url);
    let encoding = get("encoding").unwrap_or("").trim().to_ascii_lowercase();
    if !(encoding.is_empty() || Encoding::parse(&encoding) == Some(Encoding::Csv)) {
        return Err(ParamError::Bad(format!(
            "invalid 'encoding' query parameter: {encoding:?} must be 'csv' or empty/missing"
        )));
    }
    let width = d.min_width.clamp(1, u32::MAX as i64) as u32;
    let height = d.min_height.clamp(1, u32::MAX as i64) as u32;
    Ok(RenderRequest {
        url,
        viewport: Viewport {
            width,
            height: Some(height),
            initial_height: height,
            scale: 1.0,
            landscape: !d.portrait,
        },
        timezone: get("timezone")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from),
        cookie: render_cookie(get("renderKey"), get("domain")),
        accept_language: accept_language
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from),
        extra_headers: Vec::new(),
        priority: Default::default(),
        fetch_title: false,
        readiness: readiness_of(d),
        output: Output::Csv {
            file_name: get("filePath").and_then(crate::output::csv::file_name_from),
        },
        deadline: Deadline::after(parse_timeout(get("timeout"), limits)?),
    })
}

/// `timeout`: plain seconds or a Go duration; absent or 0 means the server default. The Go
/// service has no upper bound; grender clamps to render.max-timeout (with a debug line), so
/// Grafana's own longer timeouts keep working while no request holds a slot for days.
fn parse_timeout(value: Option<&str>, limits: &Limits) -> Result<Duration, ParamError> {
    let bad = |v: &str, why: &str| {
        Err(ParamError::Bad(format!(
            "invalid 'timeout' query parameter: {v:?} {why}"
        )))
    };
    let asked = match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => return Ok(limits.default_timeout),
        Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => match v.parse::<u64>() {
            Ok(0) => return Ok(limits.default_timeout),
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => return bad(v, "is not a number of seconds"),
        },
        Some(v) => match parse_duration(v) {
            Ok(d) if d.is_zero() => return Ok(limits.default_timeout),
            Ok(d) => d,
            Err(_) => return bad(v, "(use seconds, or a duration like 45s)"),
        },
    };
    if asked > limits.max_timeout {
        tracing::debug!(
            "the request's timeout of {asked:?} is clamped to render.max-timeout ({:?})",
            limits.max_timeout
        );
        return Ok(limits.max_timeout);
    }
    Ok(asked)
}

/// The readiness limits of a request.
fn readiness_of(d: &crate::config::RequestDefaults) -> ReadinessOptions {
    ReadinessOptions {
        timeout: d.readiness_timeout,
        first_signal_grace: d.give_up_on_first_query,
    }
}

/// The render-key cookie, set only when Grafana sent both the key and its domain.
fn render_cookie(key: Option<&str>, domain: Option<&str>) -> Option<RenderCookie> {
    match (key, domain) {
        (Some(key), Some(domain)) if !key.is_empty() && !domain.is_empty() => Some(RenderCookie {
            key: key.to_string(),
            domain: domain.to_string(),
        }),
        _ => None,
    }
}

/// `pdf.*` options: from the `/render` query, else from the target URL's own query (where
/// older Grafana and the official tests put them), else the defaults.
fn pdf_options(
    pairs: &[(String, String)],
    target: &str,
    landscape: bool,
    max_pages: u32,
) -> Result<PdfOptions, ParamError> {
    let target_pairs: Vec<(String, String)> = url::Url::parse(target)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let get = |name: &str| {
        pairs
            .iter()
            .chain(target_pairs.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let boolean =
        |name: &str, default: bool| parse_flag(name, get(name)).map(|v| v.unwrap_or(default));
    let format = get("pdf.format").unwrap_or("a4").to_ascii_lowercase();
    if pdf::paper_size(&format).is_none() {
        let names: Vec<_> = pdf::paper_names().collect();
        return Err(ParamError::Bad(format!(
            "invalid 'pdf.format' query parameter: {format:?} (use one of {})",
            names.join(", ")
        )));
    }
    let page_ranges = get("pdf.pageRanges").map(String::from);
    if let Some(r) = &page_ranges
        && !r
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | ',' | ' '))
    {
        return Err(ParamError::Bad(format!(
            "invalid 'pdf.pageRanges' query parameter: {r:?} (use e.g. 1-3, 5)"
        )));
    }
    Ok(PdfOptions {
        format,
        landscape: boolean("pdf.landscape", landscape)?,
        print_background: boolean("pdf.printBackground", true)?,
        page_ranges,
        max_pages,
        report: None,
    })
}

/// The `url` rule: present, parseable, http(s), and inside the allowed origins.
fn check_url(raw: Option<&str>, allowed: &[url::Origin]) -> Result<String, ParamError> {
    let raw = raw.unwrap_or("");
    if raw.is_empty() {
        return Err(ParamError::MissingUrl);
    }
    let parsed = url::Url::parse(raw).map_err(|e| ParamError::InvalidUrl(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ParamError::Forbidden(format!(
            "Forbidden query url protocol {:?}: only http and https URLs can be rendered",
            parsed.scheme()
        )));
    }
    if !allowed.is_empty() && !allowed.contains(&parsed.origin()) {
        return Err(ParamError::Forbidden(format!(
            "url origin {} is not allowed; add it to server.allowed-origin",
            parsed.origin().ascii_serialization()
        )));
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    fn parse(q: &str) -> Result<RenderRequest, ParamError> {
        parse_render_query(q, None, &limits())
    }

    #[test]
    fn a_pdf_scale_chromium_cannot_print_is_refused_while_parsing() {
        let err = parse("url=http://g/d&encoding=pdf&deviceScaleFactor=0.25").unwrap_err();
        assert!(
            matches!(&err, ParamError::Bad(m) if m.contains("print scale")),
            "{err:?}"
        );
        assert_eq!(err.code(), ErrorCode::BadRequest);
        assert!(parse("url=http://g/d&encoding=pdf&deviceScaleFactor=2").is_ok());
    }

    #[test]
    fn url_problems_have_their_own_kinds() {
        assert_eq!(parse("url=").unwrap_err().url_check(), "missing-query");
        assert_eq!(parse("url=::").unwrap_err().url_check(), "invalid-url");
        let forbidden = parse("url=file:///etc/passwd").unwrap_err();
        assert_eq!(
            (forbidden.url_check(), forbidden.code()),
            ("invalid-protocol", ErrorCode::ForbiddenUrl)
        );
        assert_eq!(
            parse("url=http://g/d&width=wide").unwrap_err().url_check(),
            "valid"
        );
    }

    #[test]
    fn sizes_are_clamped_like_go() {
        let r = parse("url=http://g/d&width=1&height=1").unwrap();
        assert_eq!((r.viewport.width, r.viewport.height), (1000, Some(500)));
        let r = parse("url=http://g/d&width=5000&height=9000").unwrap();
        assert_eq!((r.viewport.width, r.viewport.height), (3000, Some(3000)));
        let r = parse("url=http://g/d&width=2000").unwrap();
        assert_eq!((r.viewport.height, r.viewport.initial_height), (None, 1500));
        let r = parse("url=http://g/d&height=-1").unwrap();
        assert_eq!(
            (
                r.viewport.width,
                r.viewport.height,
                r.viewport.initial_height
            ),
            (1000, None, 750)
        );
    }

    #[test]
    fn scale_is_clamped_and_must_be_positive() {
        assert_eq!(
            parse("url=http://g/&deviceScaleFactor=10&height=500")
                .unwrap()
                .viewport
                .scale,
            4.0
        );
        assert_eq!(
            parse("url=http://g/&deviceScaleFactor=1.000000")
                .unwrap()
                .viewport
                .scale,
            1.0
        );
        for bad in ["0", "-1", "abc", "NaN"] {
            assert!(
                matches!(
                    parse(&format!("url=http://g/&deviceScaleFactor={bad}")),
                    Err(ParamError::Bad(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(matches!(parse(""), Err(ParamError::MissingUrl)));
        assert!(matches!(parse("url="), Err(ParamError::MissingUrl)));
        for bad in [
            "file:///etc/passwd",
            "chrome://version",
            "ftp://localhost:21/",
            "socket://localhost:8081/",
        ] {
            assert!(
                matches!(parse(&format!("url={bad}")), Err(ParamError::Forbidden(_))),
                "{bad}"
            );
        }
        let mut l = limits();
        l.allowed_origins = vec![url::Url::parse("http://grafana:3000").unwrap().origin()];
        assert!(parse_render_query("url=http://grafana:3000/d/x", None, &l).is_ok());
        assert!(matches!(
            parse_render_query("url=http://evil:3000/d/x", None, &l),
            Err(ParamError::Forbidden(_))
        ));
    }

    #[test]
    fn timeout_and_encoding() {
        let r = parse("url=http://g/&timeout=45s").unwrap();
        assert!(
            r.deadline.remaining() <= Duration::from_secs(45)
                && r.deadline.remaining() > Duration::from_secs(44)
        );
        assert!(parse("url=http://g/&timeout=30").is_ok());
        for bad in ["-5", "abc", "5x"] {
            assert!(
                matches!(
                    parse(&format!("url=http://g/&timeout={bad}")),
                    Err(ParamError::Bad(_))
                ),
                "{bad}"
            );
        }
        // Longer than render.max-timeout (5 min here): clamped, in seconds and as a duration.
        for huge in ["5000000h", "9999999999", "301s"] {
            let r = parse(&format!("url=http://g/&timeout={huge}")).unwrap();
            let left = r.deadline.remaining();
            assert!(
                left <= Duration::from_secs(300) && left > Duration::from_secs(299),
                "{huge}: {left:?}"
            );
        }
        assert!(matches!(
            parse("url=http://g/&timeout=99999999999999999999999"),
            Err(ParamError::Bad(_))
        ));
        assert!(parse("url=http://g/&encoding=").is_ok());
        assert!(parse("url=http://g/&encoding=PNG").is_ok());
        assert!(matches!(
            parse("url=http://g/&encoding=csv"),
            Err(ParamError::Bad(_))
        ));
        assert!(matches!(
            parse("url=http://g/&encoding=pdf").unwrap().output,
            Output::Pdf(_)
        ));
        assert!(matches!(
            parse("url=http://g/&width=abc"),
            Err(ParamError::Bad(_))
        ));
    }

    #[test]
    fn cookie_needs_both_key_and_domain() {
        assert!(parse("url=http://g/&renderKey=k").unwrap().cookie.is_none());
        let c = parse("url=http://g/&renderKey=k&domain=g")
            .unwrap()
            .cookie
            .unwrap();
        assert_eq!((c.key.as_str(), c.domain.as_str()), ("k", "g"));
        assert!(!format!("{c:?}").contains('k') || !format!("{c:?}").contains("\"k\""));
    }

    #[test]
    fn huge_pictures_are_refused() {
        assert!(matches!(
            parse("url=http://g/&width=3000&height=3000&deviceScaleFactor=4"),
            Err(ParamError::Bad(_))
        ));
    }
}
