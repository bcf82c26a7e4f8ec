//! One run of one report: resolve its time range at the moment it was due, render the
//! dashboard through the service (in the background, behind Grafana's own requests), and
//! build and send the e-mail.

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;

use super::config::{Format, Report, SmtpConfig};
use super::mail::{Letter, Part, build, send};
use super::schedule::{TimeRange, resolve_range};
use super::template::{Values, fill};
use crate::error::ErrorCode;
use crate::output::Output;
use crate::output::report_pdf::ReportLayout;
use crate::request::{Priority, RenderRequest};
use crate::service::{Route, Service};

/// How long one render of a report may take (a big dashboard, many queries).
const RENDER_TIMEOUT_SECS: u32 = 300;

/// The e-mail of `report` for the run due at `due`, rendered now.
pub(crate) async fn compose(
    service: &Service,
    report: &Report,
    due: DateTime<Utc>,
    to: Option<&[Mailbox]>,
) -> Result<Letter, String> {
    let range = resolve_range(&report.from, &report.to, due, report.timezone)?;
    // The report's own title, else Grafana's (asked in the page while rendering), else the
    // URL's slug.
    let fallback = report
        .title
        .clone()
        .unwrap_or_else(|| title_from_url(&report.dashboard));
    let described = range.describe(report.timezone);
    let from = range.from.with_timezone(&report.timezone).to_rfc3339();
    let until = range.to.with_timezone(&report.timezone).to_rfc3339();
    let fill_in = |template: &str, title: &str| {
        let values: Values = [
            ("title", title),
            ("range", &described),
            ("from", &from),
            ("to", &until),
            ("name", &report.name),
            ("dashboard", report.dashboard.as_str()),
        ];
        fill(template, &values)
    };
    let file_stem = file_stem(&report.name, &range, report.timezone);
    let dashboard = page_url(report, &range, "/d/");
    let mut attachments = Vec::new();
    let mut inline = None;
    let mut fetched = None;
    match &report.format {
        Format::Pdf {
            paper,
            landscape,
            footer,
            logo,
        } => {
            let query = [
                ("encoding", "pdf".to_string()),
                ("width", "1600".into()),
                ("pdf.format", paper.clone()),
                ("pdf.landscape", landscape.to_string()),
            ];
            let layout = ReportLayout {
                title: fallback.clone(),
                subtitle: described.clone(),
                footer: footer.as_ref().map(|f| fill_in(f, &fallback)),
                logo: logo.clone(),
            };
            let (bytes, title) = render(service, report, &query, dashboard, Some(layout)).await?;
            fetched = title;
            attachments.push(Part {
                name: format!("{file_stem}.pdf"),
                content_type: "application/pdf",
                bytes,
            });
        }
        Format::Png {
            inline: show,
            width,
            height,
        } => {
            let query = [
                ("encoding", "png".to_string()),
                ("width", width.to_string()),
                ("height", height.map_or("-1".into(), |h| h.to_string())),
            ];
            let (bytes, title) = render(service, report, &query, dashboard, None).await?;
            fetched = title;
            let part = Part {
                name: format!("{file_stem}.png"),
                content_type: "image/png",
                bytes,
            };
            if *show {
                inline = Some(part);
            } else {
                attachments.push(part);
            }
        }
        Format::Csv { panels } => {
            for panel in panels {
                let mut url = page_url(report, &range, "/d-csv/");
                url.query_pairs_mut()
                    .append_pair("panelId", &panel.to_string());
                let (bytes, _) = render(service, report, &[], url, None).await?;
                attachments.push(Part {
                    name: format!("{file_stem}-panel-{panel}.csv"),
                    content_type: "text/csv; charset=utf-8",
                    bytes,
                });
            }
        }
    }
    let title = report.title.clone().or(fetched).unwrap_or(fallback);
    Ok(Letter {
        to: to.map_or_else(|| report.recipients.clone(), <[Mailbox]>::to_vec),
        subject: fill_in(&report.subject, &title),
        text: fill_in(&report.message, &title),
        attachments,
        inline,
    })
}

/// Builds and sends `letter`.
pub(crate) async fn deliver(smtp: &SmtpConfig, letter: &Letter) -> Result<(), String> {
    let message = build(&smtp.from, letter)?;
    send(smtp, message).await
}

/// The dashboard URL of `report` for `range`, on Grafana's `/d/` route or its `/d-csv/<uid>`
/// export page, in kiosk mode, with its own variables kept.
fn page_url(report: &Report, range: &TimeRange, route: &str) -> url::Url {
    let mut url = report.dashboard.clone();
    if route != "/d/"
        && let Some(uid) = url
            .path()
            .strip_prefix("/d/")
            .and_then(|rest| rest.split('/').next())
            .map(str::to_string)
    {
        url.set_path(&format!("{route}{uid}"));
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !matches!(k.as_ref(), "from" | "to" | "timezone" | "tz" | "kiosk"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("from", &range.from_ms().to_string())
        .append_pair("to", &range.to_ms().to_string())
        .append_pair("timezone", report.timezone.name())
        .append_pair("kiosk", "");
    url
}

/// Renders `url` for `report` in the background, a PDF laid out as a report when `layout` is
/// given; also returns the dashboard's title from Grafana when the report names none.
async fn render(
    service: &Service,
    report: &Report,
    options: &[(&str, String)],
    url: url::Url,
    layout: Option<ReportLayout>,
) -> Result<(Vec<u8>, Option<String>), String> {
    let csv = url.path().starts_with("/d-csv/");
    let query = {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("url", url.as_str())
            .append_pair("timezone", report.timezone.name())
            .append_pair("timeout", &RENDER_TIMEOUT_SECS.to_string());
        for (k, v) in options {
            query.append_pair(k, v);
        }
        query.finish()
    };
    let route = if csv {
        Route::HttpCsv
    } else {
        Route::HttpRender
    };
    let mut req: RenderRequest = service
        .parse(route, &query, None)
        .map_err(|e| format!("report {:?}: {e}", report.name))?;
    req.priority = Priority::Background;
    req.fetch_title = report.title.is_none() && !csv;
    if let (Some(layout), Output::Pdf(pdf)) = (layout, &mut req.output) {
        pdf.report = Some(layout);
    }
    if let Some(token) = &report.token {
        req.extra_headers
            .push(("Authorization".into(), format!("Bearer {}", token.0)));
    }
    match service.render(req, None, Route::Report).await {
        Ok(capture) => Ok((capture.bytes.to_vec(), capture.title.clone())),
        Err(e) if e.code() == ErrorCode::LoginPage => Err(format!(
            "rendering {}: [{}] Grafana sent the browser to its login page: the report's \
             Grafana token was refused or is missing. Fix: set grafana.token_env or \
             grafana.token_file to a service-account token that can view the dashboard",
            redacted_page(&url),
            e.code()
        )),
        Err(e) => Err(format!(
            "rendering {}: [{}] {e}",
            redacted_page(&url),
            e.code()
        )),
    }
}

/// The page's path, without its query (which may carry variables worth keeping private).
fn redacted_page(url: &url::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// The dashboard's title when the report names none: its URL's slug, in words
/// ("/d/abc/ops-overview" → "ops overview").
fn title_from_url(url: &url::Url) -> String {
    url.path_segments()
        .and_then(|mut s| s.nth(2))
        .filter(|slug| !slug.is_empty())
        .map(|slug| slug.replace('-', " "))
        .unwrap_or_else(|| url.path().to_string())
}

/// `weekly-2026-11-30`: the report and the day its range ends, for attachment names.
fn file_stem(name: &str, range: &TimeRange, tz: chrono_tz::Tz) -> String {
    format!("{name}-{}", range.to.with_timezone(&tz).format("%Y-%m-%d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_slug() {
        let url = url::Url::parse("http://g:3000/d/abc/ops-overview?orgId=1").expect("url");
        assert_eq!(title_from_url(&url), "ops overview");
    }
}
