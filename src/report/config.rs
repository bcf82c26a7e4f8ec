//! The reports file (`--reports FILE`): SMTP settings and the list of reports, read and
//! checked as a whole, so a mistake is reported at start-up (or reload) with the line it is on,
//! never at 08:00 on Monday when the report is due.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;

use super::schedule::{Schedule, parse_tz, resolve_range};

/// Everything the reports file says, checked.
#[derive(Debug, Clone)]
pub(crate) struct ReportsConfig {
    pub(crate) smtp: SmtpConfig,
    pub(crate) reports: Vec<Report>,
    /// Where the run history is kept (`history:`; default: beside the reports file).
    pub(crate) history: PathBuf,
    /// A report due while the service was down is still sent when it comes back within this
    /// window (`catch_up:`, default 24 h); older ones are logged as missed.
    pub(crate) catch_up: Duration,
    /// Attempts per run before it ends as failed (`retry.attempts`, default 5).
    pub(crate) attempts: u32,
    /// First retry delay, doubled per attempt (`retry.backoff`, default 1 min, at most 1 h).
    pub(crate) backoff: Duration,
}

/// How to reach the mail server.
#[derive(Debug, Clone)]
pub(crate) struct SmtpConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) security: Security,
    pub(crate) login: Option<(String, Secret)>,
    pub(crate) from: Mailbox,
    pub(crate) timeout: Duration,
    /// PEM file of a private CA the server's certificate is checked against (beside the
    /// system's roots).
    pub(crate) ca_file: Option<PathBuf>,
}

/// The transport security of the SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS at all: only for a relay on the same host or a test server.
    None,
}

/// One report.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) name: String,
    /// The dashboard page, with its variables; from/to and the time zone are set per run.
    pub(crate) dashboard: url::Url,
    /// The title in subjects and headers; default: the dashboard's own.
    pub(crate) title: Option<String>,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) timezone: chrono_tz::Tz,
    pub(crate) schedule: Schedule,
    pub(crate) format: Format,
    pub(crate) recipients: Vec<Mailbox>,
    pub(crate) subject: String,
    pub(crate) message: String,
    /// Grafana service-account token, sent to the dashboard's origin only.
    pub(crate) token: Option<Secret>,
}

/// What is attached, or shown.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Format {
    /// The whole dashboard as a PDF attachment: pages cut between panels, a header with the
    /// title and time range (and `logo`, a data URI), a footer with `footer` and page numbers.
    Pdf {
        paper: String,
        landscape: bool,
        footer: Option<String>,
        logo: Option<String>,
    },
    /// The dashboard as a PNG, attached or shown in the message (`inline`).
    Png {
        inline: bool,
        width: u32,
        height: Option<u32>,
    },
    /// One CSV attachment per chosen panel.
    Csv { panels: Vec<u32> },
}

impl Format {
    /// The name used in listings.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Format::Pdf { .. } => "pdf",
            Format::Png { inline: false, .. } => "png",
            Format::Png { inline: true, .. } => "png-inline",
            Format::Csv { .. } => "csv",
        }
    }
}

/// A password or token: never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileYaml {
    smtp: SmtpYaml,
    #[serde(default)]
    history: Option<PathBuf>,
    #[serde(default)]
    catch_up: Option<String>,
    #[serde(default)]
    retry: Option<RetryYaml>,
    /// Defaults for every report.
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    grafana: Option<CredentialsYaml>,
    reports: Vec<ReportYaml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryYaml {
    #[serde(default)]
    attempts: Option<u32>,
    #[serde(default)]
    backoff: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpYaml {
    host: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    security: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    from: String,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

#[derive(Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
struct CredentialsYaml {
    #[serde(default)]
    token_env: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportYaml {
    name: String,
    dashboard: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    range: Option<RangeYaml>,
    #[serde(default)]
    timezone: Option<String>,
    schedule: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    pdf: Option<PdfYaml>,
    #[serde(default)]
    width: Option<u32>,
    #[serde(default)]
    height: Option<u32>,
    #[serde(default)]
    panels: Vec<u32>,
    recipients: Vec<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    grafana: Option<CredentialsYaml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeYaml {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PdfYaml {
    #[serde(default)]
    paper: Option<String>,
    #[serde(default)]
    landscape: Option<bool>,
    #[serde(default)]
    footer: Option<String>,
    #[serde(default)]
    logo: Option<PathBuf>,
}

/// Default subject and message: the title and the time range the report covers.
pub(crate) const DEFAULT_SUBJECT: &str = "{{title}} ({{range}})";
pub(crate) const DEFAULT_MESSAGE: &str = "{{title}}: {{range}}.";

/// Reads and checks the reports file at `path`; `env` looks up environment variables (the
/// process's in production). Errors name the file and, where it is known, the line.
pub(crate) fn load(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ReportsConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reports file {}: cannot read it: {e}", path.display()))?;
    parse(&text, path, env)
}

/// [`load`] for text already read; `path` names the file in messages and places the default
/// history database.
pub(crate) fn parse(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ReportsConfig, String> {
    let shown = path.display();
    let file: FileYaml = serde_yaml_ng::from_str(text).map_err(|e| match e.location() {
        Some(at) => format!("{shown}:{}: {}", at.line(), without_location(&e)),
        None => format!("{shown}: {e}"),
    })?;
    let at = |line: usize, msg: String| format!("{shown}:{line}: {msg}");
    let top = |key: &str, msg: String| at(line_of_key(text, 0, key), msg);

    let smtp = smtp(&file.smtp, env).map_err(|m| top("smtp", m))?;
    let catch_up = match &file.catch_up {
        Some(v) => duration(v, "catch_up").map_err(|m| top("catch_up", m))?,
        None => Duration::from_secs(24 * 3600),
    };
    let retry = file.retry.as_ref();
    let attempts = retry.and_then(|r| r.attempts).unwrap_or(5);
    if !(1..=20).contains(&attempts) {
        return Err(top(
            "retry",
            format!("retry.attempts is {attempts}: use 1 to 20"),
        ));
    }
    let backoff = match retry.and_then(|r| r.backoff.as_deref()) {
        Some(v) => duration(v, "retry.backoff").map_err(|m| top("retry", m))?,
        None => Duration::from_secs(60),
    };
    let history = file.history.clone().unwrap_or_else(|| {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "reports".into());
        path.with_file_name(format!("{stem}.db"))
    });
    let default_tz = file.timezone.as_deref().unwrap_or("UTC");
    if let Err(m) = parse_tz(default_tz) {
        return Err(top("timezone", m));
    }
    let mut reports = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, r) in file.reports.iter().enumerate() {
        let line = report_line(text, i);
        let field = |key: &str| line_of_key(text, line, key);
        let fail = |key: &str, msg: String| {
            let line = if key.is_empty() { line } else { field(key) };
            at(line, format!("report {:?}: {msg}", r.name))
        };
        if !valid_name(&r.name) {
            return Err(fail(
                "",
                "a report name is 1-64 letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if !seen.insert(r.name.clone()) {
            return Err(fail("", "another report has this name".into()));
        }
        let credentials = r.grafana.clone().or_else(|| file.grafana.clone());
        reports.push(report(r, default_tz, credentials, env, &fail)?);
    }
    if reports.is_empty() {
        return Err(top("reports", "the file lists no report".into()));
    }
    Ok(ReportsConfig {
        smtp,
        reports,
        history,
        catch_up,
        attempts,
        backoff: backoff.min(Duration::from_secs(3600)),
    })
}

fn report(
    r: &ReportYaml,
    default_tz: &str,
    credentials: Option<CredentialsYaml>,
    env: &dyn Fn(&str) -> Option<String>,
    fail: &dyn Fn(&str, String) -> String,
) -> Result<Report, String> {
    let dashboard = url::Url::parse(&r.dashboard)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            fail(
                "dashboard",
                format!(
                    "dashboard {:?} is not an http(s) URL of a Grafana page",
                    r.dashboard
                ),
            )
        })?;
    let tz_name = r.timezone.as_deref().unwrap_or(default_tz);
    let timezone = parse_tz(tz_name).map_err(|m| fail("timezone", m))?;
    let schedule = Schedule::parse(&r.schedule, tz_name).map_err(|m| fail("schedule", m))?;
    let (from, to) = match &r.range {
        Some(range) => (range.from.clone(), range.to.clone()),
        None => ("now-24h".into(), "now".into()),
    };
    resolve_range(&from, &to, chrono::Utc::now(), timezone)
        .map_err(|m| fail("range", format!("range: {m}")))?;
    let format = format(r).map_err(|m| fail("format", m))?;
    if r.recipients.is_empty() {
        return Err(fail("recipients", "recipients is empty".into()));
    }
    let recipients = r
        .recipients
        .iter()
        .map(|a| {
            a.parse::<Mailbox>()
                .map_err(|e| format!("recipient {a:?} is not an e-mail address ({e})"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| fail("recipients", m))?;
    let token = match credentials {
        Some(c) => secret(
            c.token_env.as_deref(),
            c.token_file.as_deref(),
            "token",
            env,
        )
        .map_err(|m| fail("grafana", format!("grafana: {m}")))?,
        None => None,
    };
    let subject = r.subject.clone().unwrap_or_else(|| DEFAULT_SUBJECT.into());
    let message = r.message.clone().unwrap_or_else(|| DEFAULT_MESSAGE.into());
    super::template::check(&subject).map_err(|m| fail("subject", format!("subject {m}")))?;
    super::template::check(&message).map_err(|m| fail("message", format!("message {m}")))?;
    Ok(Report {
        name: r.name.clone(),
        dashboard,
        title: r.title.clone(),
        from,
        to,
        timezone,
        schedule,
        format,
        recipients,
        subject,
        message,
        token,
    })
}

fn format(r: &ReportYaml) -> Result<Format, String> {
    let name = r.format.as_deref().unwrap_or("pdf").to_ascii_lowercase();
    let format = match name.as_str() {
        "pdf" => {
            let pdf = r.pdf.as_ref();
            let paper = pdf
                .and_then(|p| p.paper.clone())
                .unwrap_or_else(|| "a4".into())
                .to_ascii_lowercase();
            if crate::output::pdf::paper_size(&paper).is_none() {
                return Err(format!(
                    "pdf.paper {paper:?} is not a paper size (use one of {})",
                    crate::output::pdf::paper_names()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let logo = match pdf.and_then(|p| p.logo.as_deref()) {
                Some(path) => Some(logo_uri(path)?),
                None => None,
            };
            Format::Pdf {
                paper,
                landscape: pdf.and_then(|p| p.landscape).unwrap_or(true),
                footer: pdf.and_then(|p| p.footer.clone()),
                logo,
            }
        }
        "png" | "png-inline" => Format::Png {
            inline: name == "png-inline",
            width: r.width.unwrap_or(1600),
            height: r.height,
        },
        "csv" => {
            if r.panels.is_empty() {
                return Err("format csv needs panels: the ids of the panels to export".into());
            }
            Format::Csv {
                panels: r.panels.clone(),
            }
        }
        other => {
            return Err(format!(
                "format {other:?} is not one of pdf, png, png-inline, csv"
            ));
        }
    };
    if r.pdf.is_some() && !matches!(format, Format::Pdf { .. }) {
        return Err(format!("pdf: options are for format pdf, not {name}"));
    }
    if !r.panels.is_empty() && !matches!(format, Format::Csv { .. }) {
        return Err(format!("panels: is for format csv, not {name}"));
    }
    Ok(format)
}

/// The largest logo file read (it is in every page of every report).
const MAX_LOGO_BYTES: u64 = 512 * 1024;

/// A PNG, JPEG or SVG file as a `data:` URI for the PDF header.
fn logo_uri(path: &Path) -> Result<String, String> {
    use base64::Engine;
    let kind = match path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        _ => {
            return Err(format!(
                "pdf.logo {}: use a .png, .jpg or .svg file",
                path.display()
            ));
        }
    };
    let size = std::fs::metadata(path)
        .map_err(|e| format!("pdf.logo {}: {e}", path.display()))?
        .len();
    if size > MAX_LOGO_BYTES {
        return Err(format!(
            "pdf.logo {} is {size} bytes; use one of at most {MAX_LOGO_BYTES}",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("pdf.logo {}: {e}", path.display()))?;
    Ok(format!(
        "data:{kind};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn smtp(s: &SmtpYaml, env: &dyn Fn(&str) -> Option<String>) -> Result<SmtpConfig, String> {
    let security = match s.security.as_deref().unwrap_or("starttls") {
        "starttls" => Security::StartTls,
        "tls" => Security::Tls,
        "none" => Security::None,
        other => {
            return Err(format!(
                "smtp.security {other:?} is not one of starttls, tls, none"
            ));
        }
    };
    let port = s.port.unwrap_or(match security {
        Security::StartTls => 587,
        Security::Tls => 465,
        Security::None => 25,
    });
    if s.host.trim().is_empty() {
        return Err("smtp.host is empty".into());
    }
    let password = secret(
        s.password_env.as_deref(),
        s.password_file.as_deref(),
        "password",
        env,
    )
    .map_err(|m| format!("smtp: {m}"))?;
    let login = match (&s.username, password) {
        (Some(user), Some(password)) => Some((user.clone(), password)),
        (None, None) => None,
        (Some(_), None) => {
            return Err("smtp.username needs smtp.password_env or smtp.password_file".into());
        }
        (None, Some(_)) => return Err("smtp: a password without smtp.username".into()),
    };
    let from = s
        .from
        .parse::<Mailbox>()
        .map_err(|e| format!("smtp.from {:?} is not an e-mail address ({e})", s.from))?;
    let timeout = match &s.timeout {
        Some(t) => duration(t, "smtp.timeout")?,
        None => Duration::from_secs(30),
    };
    Ok(SmtpConfig {
        host: s.host.clone(),
        port,
        security,
        login,
        from,
        timeout,
        ca_file: s.ca_file.clone(),
    })
}

/// A secret from an environment variable or a file (trailing newline removed); both or an
/// empty value are errors, so a typo never sends an empty password.
fn secret(
    env_name: Option<&str>,
    file: Option<&Path>,
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, String> {
    let value = match (env_name, file) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(format!("give {what}_env or {what}_file, not both"));
        }
        (Some(name), None) => {
            env(name).ok_or_else(|| format!("{what}_env names {name}, which is not set"))?
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("{what}_file {}: {e}", path.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
    };
    if value.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    Ok(Some(Secret(value)))
}

fn duration(value: &str, name: &str) -> Result<Duration, String> {
    crate::config::parse_duration(value).map_err(|e| format!("{name}: {e}"))
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// serde's message without its " at line L column C" tail (the line leads the message).
fn without_location(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The 1-based line of the `i`-th report: its `name:` line (the `i`-th in the file), else the
/// first line of the reports list.
fn report_line(text: &str, i: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let t = line.trim_start().trim_start_matches("- ").trim_start();
            t.starts_with("name:")
        })
        .nth(i)
        .map(|(n, _)| n + 1)
        .unwrap_or_else(|| line_of_key(text, 0, "reports"))
}

/// The 1-based line of the first `key:` at or after line `from` (1-based; 0 = the start),
/// else `from`.
fn line_of_key(text: &str, from: usize, key: &str) -> usize {
    let prefix = format!("{key}:");
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(&prefix)
        })
        .map(|(n, _)| n + 1)
        .unwrap_or(from.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
smtp:
  host: 127.0.0.1
  port: 2525
  security: none
  from: Reports <reports@example.org>
timezone: Europe/Berlin
reports:
  - name: weekly
    dashboard: http://127.0.0.1:3000/d/abc/ops?var-env=prod
    range: {from: now-7d, to: now}
    schedule: weekly on monday at 08:00
    format: pdf
    pdf: {paper: letter, landscape: false}
    recipients: [ops@example.org, \"Zoë <zoe@example.org>\"]
    grafana: {token_env: TOKEN}
  - name: daily
    dashboard: http://127.0.0.1:3000/d/abc/ops
    schedule: \"0 7 * * *\"
    timezone: Asia/Tokyo
    format: png-inline
    width: 1200
    recipients: [a@example.org]
    subject: \"{{title}} 日報\"
";

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "glsa_secret".to_string())
    }

    fn parse_text(text: &str) -> Result<ReportsConfig, String> {
        parse(text, Path::new("/etc/grender/reports.yaml"), &env)
    }

    #[test]
    fn a_complete_file_is_read_with_defaults_filled_in() {
        let c = parse_text(GOOD).expect("valid");
        assert_eq!(c.history, Path::new("/etc/grender/reports.db"));
        assert_eq!(c.smtp.port, 2525);
        assert_eq!(c.smtp.security, Security::None);
        assert_eq!(c.attempts, 5);
        let weekly = &c.reports[0];
        assert_eq!(weekly.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(
            weekly.format,
            Format::Pdf {
                paper: "letter".into(),
                landscape: false,
                footer: None,
                logo: None,
            }
        );
        assert_eq!(weekly.recipients.len(), 2);
        assert_eq!(weekly.token, Some(Secret("glsa_secret".into())));
        assert_eq!(weekly.subject, DEFAULT_SUBJECT);
        let daily = &c.reports[1];
        assert_eq!(daily.timezone, chrono_tz::Asia::Tokyo);
        assert_eq!((daily.from.as_str(), daily.to.as_str()), ("now-24h", "now"));
        assert_eq!(daily.format.label(), "png-inline");
        assert_eq!(daily.token, None);
        assert!(!format!("{weekly:?}").contains("glsa_secret"));
    }

    #[test]
    fn mistakes_name_the_line_they_are_on() {
        let cases = [
            (
                GOOD.replace("weekly on monday at 08:00", "daily at 25:00"),
                ":11: report \"weekly\": ",
            ),
            (
                GOOD.replace("timezone: Asia/Tokyo", "timezone: Asia/Tokio"),
                ":19: report \"daily\": ",
            ),
            (
                GOOD.replace("format: png-inline", "format: gif"),
                ":20: report \"daily\": format \"gif\"",
            ),
            (
                GOOD.replace("a@example.org", "not an address"),
                ":22: report \"daily\": recipient \"not an address\"",
            ),
            (
                GOOD.replace("token_env: TOKEN", "token_env: MISSING"),
                ":15: report \"weekly\": grafana: token_env names MISSING",
            ),
            (
                GOOD.replace("now-7d", "now+1d"),
                ":10: report \"weekly\": range:",
            ),
            (
                GOOD.replace("    width: 1200\n", "    widht: 1200\n"),
                ":21: ",
            ),
            (
                GOOD.replace("name: daily", "name: weekly"),
                ":16: report \"weekly\": another report",
            ),
            (GOOD.replace("security: none", "security: ssl"), ":1: smtp."),
        ];
        for (text, expected) in cases {
            let err = parse_text(&text).expect_err(expected);
            assert!(
                err.starts_with("/etc/grender/reports.yaml:") && err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn a_logo_becomes_a_data_uri_and_other_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logo = dir.path().join("logo.png");
        std::fs::write(&logo, [0x89, b'P', b'N', b'G']).expect("write");
        let text = GOOD.replace(
            "pdf: {paper: letter, landscape: false}",
            &format!(
                "pdf: {{paper: letter, footer: x, logo: {}}}",
                logo.display()
            ),
        );
        let c = parse_text(&text).expect("valid");
        let Format::Pdf { logo, footer, .. } = &c.reports[0].format else {
            panic!("a pdf report");
        };
        assert_eq!(logo.as_deref(), Some("data:image/png;base64,iVBORw=="));
        assert_eq!(footer.as_deref(), Some("x"));
        let gif = dir.path().join("logo.gif");
        std::fs::write(&gif, b"GIF89a").expect("write");
        let err = parse_text(&text.replace("logo.png", "logo.gif")).expect_err("gif");
        assert!(err.contains(":12: report \"weekly\": pdf.logo"), "{err}");
    }

    #[test]
    fn secrets_from_files_lose_their_newline_and_empty_ones_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, "glsa_from_file\n").expect("write");
        let text = GOOD.replace(
            "token_env: TOKEN",
            &format!("token_file: {}", file.display()),
        );
        let c = parse_text(&text).expect("valid");
        assert_eq!(c.reports[0].token, Some(Secret("glsa_from_file".into())));
        std::fs::write(&file, "\n").expect("write");
        let err = parse_text(&text).expect_err("empty token");
        assert!(err.contains("the token is empty"), "{err}");
    }
}
