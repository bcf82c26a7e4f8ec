//! Scheduled e-mail reports: rendered through the service against the stand-in, sent to a
//! real SMTP server on loopback (aiosmtpd, tests/support/smtp_sink.py), and checked as a mail
//! client reads the message: MIME tree, names and types, `cid:` pictures, UTF-8 subjects.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Harness;

use grender::report::Reports;

/// A real SMTP server that writes each message it accepts as JSON (see the script).
struct SmtpSink {
    child: Child,
    port: u16,
    out: tempfile::TempDir,
}

impl SmtpSink {
    fn start(login: Option<(&str, &str)>) -> SmtpSink {
        match login {
            Some((user, password)) => Self::start_with(&["--user", user, "--password", password]),
            None => Self::start_with(&[]),
        }
    }

    /// With the script's options (login, `--starttls` / `--tls` with `--cert` and `--key`).
    fn start_with(args: &[&str]) -> SmtpSink {
        use std::io::BufRead;
        let out = tempfile::tempdir().expect("tempdir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script).arg(out.path()).args(args);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the SMTP sink (scripts/test-deps.sh installs python3-aiosmtpd)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the sink prints its port");
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP sink did not start: {line:?}"));
        SmtpSink { child, port, out }
    }

    /// How many messages arrived.
    fn count(&self) -> usize {
        std::fs::read_dir(self.out.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// The `n`-th message received (1-based), waiting a little for it.
    fn message(&self, n: usize) -> serde_json::Value {
        let path = self.out.path().join(format!("{n}.json"));
        let until = Instant::now() + Duration::from_secs(10);
        while !path.exists() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&path).expect("the message arrived");
        serde_json::from_str(&text).expect("json")
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The MIME tree as `type(child,child)`.
fn shape(node: &serde_json::Value) -> String {
    let kind = node["type"].as_str().unwrap_or("?").to_string();
    match node["parts"].as_array() {
        Some(parts) => format!(
            "{kind}({})",
            parts.iter().map(shape).collect::<Vec<_>>().join(",")
        ),
        None => kind,
    }
}

fn leaf<'a>(msg: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    msg["leaves"]
        .as_array()
        .and_then(|l| l.iter().find(|p| p["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} part in {msg}"))
}

fn write_reports(dir: &Path, h: &Harness, sink: &SmtpSink, extra_smtp: &str) -> PathBuf {
    std::fs::write(dir.join("smtp-password"), "s3cret\n").expect("write");
    std::fs::write(dir.join("grafana-token"), "glsa_report_token\n").expect("write");
    let dashboard = h.stub.url("/d/uid1/ops-overview?orgId=1&var-env=prod");
    let text = format!(
        "smtp:
  host: 127.0.0.1
  port: {port}
  security: none
  username: grender
  password_file: {dir}/smtp-password
  from: \"Grafana レポート <reports@example.org>\"
{extra_smtp}
timezone: Asia/Tokyo
grafana:
  token_file: {dir}/grafana-token
reports:
  - name: weekly
    title: 運用ダッシュボード
    dashboard: {dashboard}
    range: {{from: now-7d, to: now}}
    schedule: weekly on monday at 08:00
    format: pdf
    pdf: {{paper: a4, landscape: true}}
    recipients: [ops@example.org, \"Zoë <zoe@example.org>\"]
    subject: \"{{{{title}}}} 週報 ({{{{range}}}})\"
  - name: daily
    dashboard: {dashboard}
    schedule: daily at 07:00
    format: png-inline
    width: 1000
    height: 600
    recipients: [ops@example.org]
  - name: data
    dashboard: {dashboard}
    schedule: hourly
    format: csv
    panels: [2]
    recipients: [ops@example.org]
",
        port = sink.port,
        dir = dir.display(),
    );
    let path = dir.join("reports.yaml");
    std::fs::write(&path, text).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_arrive_as_a_mail_client_reads_them() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    h.stub.allow_key("glsa_report_token");
    let sink = SmtpSink::start(Some(("grender", "s3cret")));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_reports(dir.path(), &h, &sink, "");
    let reports = Reports::open(&path, h.service.clone()).expect("the reports file is valid");
    assert!(
        dir.path().join("reports.db").exists(),
        "history created on first start"
    );

    // A PDF attachment beside text and HTML; the subject in Japanese.
    let done = reports.send_now("weekly", None).await.expect("sent");
    assert!(done.contains("weekly-"), "{done}");
    let pdf_msg = sink.message(1);
    assert_eq!(pdf_msg["authenticated"], true);
    assert_eq!(
        pdf_msg["rcpt_tos"],
        serde_json::json!(["ops@example.org", "zoe@example.org"])
    );
    let subject = pdf_msg["subject"].as_str().expect("subject");
    assert!(
        subject.starts_with("運用ダッシュボード 週報 (") && subject.contains("(Asia/Tokyo)"),
        "{subject}"
    );
    assert!(pdf_msg["from"].as_str().unwrap_or("").contains("レポート"));
    assert_eq!(
        shape(&pdf_msg["tree"]),
        "multipart/mixed(multipart/alternative(text/plain,text/html),application/pdf)"
    );
    let pdf = leaf(&pdf_msg, "application/pdf");
    assert_eq!(pdf["disposition"], "attachment");
    let name = pdf["filename"].as_str().expect("a file name");
    assert!(
        name.starts_with("weekly-") && name.ends_with(".pdf"),
        "{name}"
    );
    let bytes = std::fs::read(pdf["saved"].as_str().expect("saved")).expect("read");
    assert!(bytes.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&bytes);
    let pages = text
        .match_indices("/Type /Page")
        .filter(|(i, _)| !text[i + 11..].starts_with('s'))
        .count();
    assert!(pages >= 1, "a PDF with pages");
    assert!(
        leaf(&pdf_msg, "text/plain")["text"]
            .as_str()
            .unwrap_or("")
            .contains("運用ダッシュボード")
    );

    // The dashboard was opened with the report's token, the absolute range and its time zone.
    let seen = h.stub.seen_at("/d/uid1/ops-overview");
    let page = seen.last().expect("the dashboard was rendered");
    assert_eq!(
        page.authorization.as_deref(),
        Some("Bearer glsa_report_token")
    );
    assert!(page.query.contains("var-env=prod"), "{}", page.query);
    assert!(
        page.query.contains("timezone=Asia%2FTokyo"),
        "{}",
        page.query
    );
    let ms = |key: &str| -> i64 {
        url::form_urlencoded::parse(page.query.as_bytes())
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {}", page.query))
    };
    assert_eq!(ms("to") - ms("from"), 7 * 24 * 3600 * 1000);

    // A picture shown in the message: HTML and PNG related, the HTML naming its cid.
    reports.send_now("daily", None).await.expect("sent");
    let inline_msg = sink.message(2);
    assert_eq!(
        shape(&inline_msg["tree"]),
        "multipart/alternative(text/plain,multipart/related(text/html,image/png))"
    );
    let png = leaf(&inline_msg, "image/png");
    assert_eq!(png["disposition"], "inline");
    assert_eq!(png["content_id"], "<dashboard>");
    let html = leaf(&inline_msg, "text/html")["text"]
        .as_str()
        .expect("html")
        .to_string();
    assert!(html.contains("src=\"cid:dashboard\""), "{html}");
    let png_bytes = std::fs::read(png["saved"].as_str().expect("saved")).expect("read");
    let image = image::load_from_memory(&png_bytes).expect("a PNG");
    assert_eq!((image.width(), image.height()), (1000, 600));
    // The default subject names the dashboard's title, as Grafana's API gives it (read by the
    // page with the report's token), and the range.
    let subject = inline_msg["subject"].as_str().expect("subject");
    assert!(subject.starts_with("Dashboard uid1 ("), "{subject}");
    let api = h.stub.seen_at("/api/dashboards/uid/uid1");
    assert_eq!(
        api.last().and_then(|s| s.authorization.as_deref()),
        Some("Bearer glsa_report_token")
    );

    // A CSV attachment per panel, to another address given by hand.
    reports
        .send_now("data", Some("someone@example.org"))
        .await
        .expect("sent");
    let csv_msg = sink.message(3);
    assert_eq!(
        csv_msg["rcpt_tos"],
        serde_json::json!(["someone@example.org"])
    );
    let csv = leaf(&csv_msg, "text/csv");
    assert!(
        csv["filename"]
            .as_str()
            .is_some_and(|n| n.starts_with("data-") && n.ends_with("-panel-2.csv")),
        "{csv}"
    );
    assert!(csv["size"].as_u64().unwrap_or(0) > 10);

    // Without a valid token Grafana shows its login page: the error names the token.
    h.stub.revoke_key("glsa_report_token");
    let err = reports
        .send_now("daily", None)
        .await
        .expect_err("login page");
    assert!(
        err.contains("[login-page]") && err.contains("grafana.token_env"),
        "{err}"
    );
    assert!(!err.contains("glsa_report_token"), "{err}");

    // A report that is not in the file is a clear error.
    let err = reports.send_now("nope", None).await.expect_err("unknown");
    assert!(err.contains("no report is named \"nope\""), "{err}");
    drop(sink);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_an_error_naming_the_server() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    h.stub.allow_key("glsa_report_token");
    let sink = SmtpSink::start(Some(("grender", "another-password")));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_reports(dir.path(), &h, &sink, "  timeout: 3s");
    let reports = Reports::open(&path, h.service.clone()).expect("valid");
    let err = reports
        .send_now("daily", None)
        .await
        .expect_err("login refused");
    assert!(
        err.contains(&format!("SMTP 127.0.0.1:{}", sink.port)),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    drop(sink);
    h.stop().await;
}

/// A reports file with one daily report, sent through `smtp_port`.
fn daily_file(dir: &Path, h: &Harness, smtp_port: u16) -> PathBuf {
    std::fs::write(dir.join("grafana-token"), "glsa_report_token").expect("write");
    let text = format!(
        "smtp:
  host: 127.0.0.1
  port: {smtp_port}
  security: none
  from: reports@example.org
  timeout: 5s
catch_up: 1h
retry: {{attempts: 3, backoff: 1m}}
reports:
  - name: morning
    dashboard: {dashboard}
    timezone: Europe/Berlin
    range: {{from: now-24h, to: now}}
    schedule: daily at 08:00
    format: png
    width: 600
    height: 400
    recipients: [ops@example.org]
    grafana: {{token_file: {dir}/grafana-token}}
",
        dashboard = h.stub.url("/d/uid1/ops"),
        dir = dir.display(),
    );
    let path = dir.join("reports.yaml");
    std::fs::write(&path, text).expect("write");
    path
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&chrono::Utc)
}

fn last_run(reports: &Reports) -> serde_json::Value {
    reports.status()["reports"][0]["last_run"].clone()
}

/// A run's recorded error names the mail server it could not reach.
fn assert_names_server(run: &serde_json::Value, port: u16) {
    assert!(
        run["error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("127.0.0.1:{port}"))),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_runs_are_sent_once_caught_up_retried_and_missed_when_too_old() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    h.stub.allow_key("glsa_report_token");
    let sink = SmtpSink::start(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = daily_file(dir.path(), &h, sink.port);
    let now = std::sync::Arc::new(std::sync::Mutex::new(at("2026-12-01T06:00:00Z")));
    let set = |t: &str| *now.lock().expect("clock") = at(t);
    let clock = |now: &std::sync::Arc<std::sync::Mutex<chrono::DateTime<chrono::Utc>>>| -> grender::report::Clock {
        let now = now.clone();
        std::sync::Arc::new(move || *now.lock().expect("clock"))
    };
    let a = Reports::open_with_clock(&path, h.service.clone(), clock(&now)).expect("valid");

    // Added at 06:00 UTC: yesterday's 08:00 Berlin (07:00 UTC) is not sent.
    a.tick_and_wait().await.expect("tick");
    assert_eq!(sink.count(), 0, "nothing due since the report was added");
    assert_eq!(a.status()["scheduling"], true);

    // Due at 07:00 UTC: sent once, however often the scheduler looks.
    set("2026-12-01T07:00:20Z");
    a.tick_and_wait().await.expect("tick");
    set("2026-12-01T07:00:40Z");
    a.tick_and_wait().await.expect("tick");
    assert_eq!(sink.count(), 1);
    assert_eq!(last_run(&a)["state"], "sent");
    let page = h.stub.seen_at("/d/uid1/ops").pop().expect("rendered");
    assert!(
        page.query.contains(&format!(
            "to={}",
            at("2026-12-01T07:00:00Z").timestamp_millis()
        )),
        "the range ends when the run was due: {}",
        page.query
    );

    // A second process on the same database stands by while the first holds the lease, and
    // never sends the run the first one sent.
    let b = Reports::open_with_clock(&path, h.service.clone(), clock(&now)).expect("valid");
    set("2026-12-01T07:01:00Z");
    b.tick_and_wait().await.expect("tick");
    assert_eq!(b.status()["scheduling"], false);
    a.release();
    b.tick_and_wait().await.expect("tick");
    assert_eq!(b.status()["scheduling"], true);
    assert_eq!(sink.count(), 1, "never sent twice");

    // Down for two days: the run due 30 minutes before the restart is sent, once.
    set("2026-12-03T07:30:00Z");
    b.tick_and_wait().await.expect("tick");
    set("2026-12-03T07:31:00Z");
    b.tick_and_wait().await.expect("tick");
    assert_eq!(sink.count(), 2);
    let page = h.stub.seen_at("/d/uid1/ops").pop().expect("rendered");
    assert!(
        page.query.contains(&format!(
            "to={}",
            at("2026-12-03T07:00:00Z").timestamp_millis()
        )),
        "{}",
        page.query
    );

    // Back three hours after a due time, beyond catch_up (1 h): recorded as missed, not sent.
    set("2026-12-05T10:00:00Z");
    b.tick_and_wait().await.expect("tick");
    assert_eq!(sink.count(), 2);
    let missed = last_run(&b);
    assert_eq!(missed["state"], "failed");
    assert!(
        missed["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("missed")),
        "{missed}"
    );

    // The mail server is unreachable: the attempt fails and is retried after the backoff
    // (1 min), once the server is back, and the run is sent on its second attempt.
    let closed = SmtpSink::start(None).port; // started and stopped: nothing listens there
    daily_file(dir.path(), &h, closed);
    set("2026-12-06T07:00:10Z");
    b.tick_and_wait().await.expect("tick");
    let failing = last_run(&b);
    assert_eq!(failing["state"], "retrying", "{failing}");
    assert_eq!(failing["attempts"], 1);
    assert_names_server(&failing, closed);
    set("2026-12-06T07:00:50Z");
    b.tick_and_wait().await.expect("tick");
    assert_eq!(last_run(&b)["attempts"], 1, "not before the backoff");
    daily_file(dir.path(), &h, sink.port);
    set("2026-12-06T07:01:20Z");
    b.tick_and_wait().await.expect("tick");
    let retried = last_run(&b);
    assert_eq!(retried["state"], "sent", "{retried}");
    assert_eq!(retried["attempts"], 2);
    assert_eq!(sink.count(), 3);

    // Unreachable for good: after retry.attempts (3) the run ends as failed, with the reason.
    daily_file(dir.path(), &h, closed);
    for t in [
        "2026-12-07T07:00:10Z", // attempt 1, next after 1 min
        "2026-12-07T07:01:20Z", // attempt 2, next after 2 min
        "2026-12-07T07:03:30Z", // attempt 3: the last
        "2026-12-07T07:20:00Z", // nothing more
    ] {
        set(t);
        b.tick_and_wait().await.expect("tick");
    }
    let failed = last_run(&b);
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["attempts"], 3);
    assert_names_server(&failed, closed);
    assert_eq!(sink.count(), 3);
    let metrics = h.service.metrics_text();
    for (outcome, count) in [
        ("sent", 3.0),
        ("missed", 1.0),
        ("retrying", 3.0),
        ("failed", 1.0),
    ] {
        let name = format!("grender_reports_total{{outcome=\"{outcome}\",report=\"morning\"}}");
        assert_eq!(
            crate::common::metric_value(&metrics, &name),
            count,
            "{outcome}"
        );
    }
    drop(sink);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_never_queued_behind_a_report() {
    let Some(h) = Harness::start(&["--render.concurrency=2"]).await else {
        return;
    };
    h.stub.allow_key("glsa_report_token");
    let sink = SmtpSink::start(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = daily_file(dir.path(), &h, sink.port);
    // The report's dashboard is slow (its queries take 2 s).
    let text = std::fs::read_to_string(&path)
        .expect("read")
        .replace("/d/uid1/ops", "/d/uid1/ops?delay=2000");
    std::fs::write(&path, text).expect("write");
    let reports = Reports::open(&path, h.service.clone()).expect("valid");
    let started = Instant::now();
    let h = std::sync::Arc::new(h);
    let render = |target: &'static str| {
        let h = h.clone();
        tokio::spawn(async move {
            let url = h.stub.url(target);
            let r = h.render(&url, &[("width", "400"), ("height", "300")]).await;
            (r.status, started.elapsed())
        })
    };
    // One slot taken by a slow render from Grafana; the report waits, as only one is free.
    let slow = render("/d-solo/uid1/panel?panelId=1&delay=2000");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = {
        let reports = reports.clone();
        tokio::spawn(async move {
            let sent = reports.send_now("morning", None).await;
            (sent, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The alert picture arrives now: it gets the free slot at once.
    let alert = render("/d-solo/uid1/panel?panelId=2");
    let (alert_status, alert_done) = alert.await.expect("alert");
    let (slow_status, slow_done) = slow.await.expect("slow");
    let (sent, report_done) = report.await.expect("report");
    assert_eq!((alert_status, slow_status), (200, 200));
    sent.expect("the report is sent, later");
    assert!(
        alert_done < slow_done,
        "the alert ({alert_done:?}) ended after the slow render ({slow_done:?}): it was queued behind the report"
    );
    assert!(
        report_done > slow_done,
        "the report ({report_done:?}) rendered after a slot was left free ({slow_done:?})"
    );
    drop(sink);
    if let Ok(h) = std::sync::Arc::try_unwrap(h) {
        h.stop().await;
    }
}

/// A private CA and a server certificate for 127.0.0.1 signed by it (openssl):
/// (ca.pem, cert.pem, key.pem).
fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-days",
            "1",
            "-subj",
            "/CN=grender test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_implicit_tls_are_checked_against_the_given_ca() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    h.stub.allow_key("glsa_report_token");
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = private_ca(dir.path());
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    for mode in ["starttls", "tls"] {
        let flag = format!("--{mode}");
        let sink = SmtpSink::start_with(&[
            "--user",
            "grender",
            "--password",
            "s3cret",
            &flag,
            "--cert",
            &cert,
            "--key",
            &key,
        ]);
        let trusted = format!("  security: {mode}\n  ca_file: {}", ca.display());
        let path = write_reports(dir.path(), &h, &sink, &trusted);
        let text = std::fs::read_to_string(&path)
            .expect("read")
            .replace("  security: none\n", "");
        std::fs::write(&path, text).expect("write");
        let reports = Reports::open(&path, h.service.clone()).expect("valid");
        reports
            .send_now("daily", None)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let msg = sink.message(1);
        assert_eq!(msg["authenticated"], true, "{mode}");
        assert_eq!(
            shape(&msg["tree"]),
            "multipart/alternative(text/plain,multipart/related(text/html,image/png))"
        );
        // Without the CA, the server's certificate is not trusted: nothing is sent.
        let untrusted = std::fs::read_to_string(&path)
            .expect("read")
            .replace(&format!("  ca_file: {}\n", ca.display()), "");
        std::fs::write(&path, untrusted).expect("write");
        let reports = Reports::open(&path, h.service.clone()).expect("valid");
        let err = reports
            .send_now("daily", None)
            .await
            .expect_err("untrusted");
        assert!(err.contains("SMTP 127.0.0.1"), "{mode}: {err}");
        assert_eq!(
            sink.count(),
            1,
            "{mode}: nothing sent to an untrusted server"
        );
    }
    h.stop().await;
}

/// Heights of the runs of rows, in a page picture, where most pixels are a drawn panel's.
fn panel_runs(page: &image::RgbImage) -> Vec<u32> {
    let drawn = grafana_stub::DRAWN_RGB;
    let mut runs = Vec::new();
    let mut run = 0;
    for y in 0..page.height() {
        let hits = (0..page.width())
            .filter(|&x| {
                let p = page.get_pixel(x, y).0;
                p.iter().zip(drawn).all(|(a, b)| a.abs_diff(b) <= 12)
            })
            .count();
        if hits * 3 > page.width() as usize {
            run += 1;
        } else if run > 0 {
            runs.push(run);
            run = 0;
        }
    }
    if run > 0 {
        runs.push(run);
    }
    runs
}

/// Writes a PDF report `name` of `dashboard` (with `extra` YAML lines, each indented 4 spaces)
/// with a token the stand-in accepts, sends it now to `sink`, and returns the saved PDF's path.
async fn send_pdf_report(
    h: &Harness,
    sink: &SmtpSink,
    dir: &Path,
    name: &str,
    dashboard: &str,
    extra: &str,
) -> String {
    h.stub.allow_key("glsa_report_token");
    std::fs::write(dir.join("grafana-token"), "glsa_report_token").expect("write");
    let text = format!(
        "smtp: {{host: 127.0.0.1, port: {port}, security: none, from: reports@example.org}}
reports:
  - name: {name}
    dashboard: {dashboard}
    schedule: daily at 08:00
    format: pdf
    recipients: [ops@example.org]
    grafana: {{token_file: {dir}/grafana-token}}
{extra}",
        port = sink.port,
        dir = dir.display(),
    );
    let path = dir.join("reports.yaml");
    std::fs::write(&path, text).expect("write");
    let reports = Reports::open(&path, h.service.clone()).expect("valid");
    reports.send_now(name, None).await.expect("sent");
    let msg = sink.message(1);
    leaf(&msg, "application/pdf")["saved"]
        .as_str()
        .expect("saved")
        .to_string()
}

/// The text of each page of `pdf` (pdftotext).
fn pdf_page_texts(pdf: &str) -> Vec<String> {
    let out = Command::new("pdftotext")
        .args(["-layout", pdf, "-"])
        .output()
        .expect("pdftotext runs (scripts/test-deps.sh installs poppler-utils)");
    String::from_utf8_lossy(&out.stdout)
        .split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .map(String::from)
        .collect()
}

/// Each page of `pdf` as a picture at 50 dpi (pdftoppm), made in `dir`.
fn pdf_page_pictures(pdf: &str, dir: &Path) -> Vec<image::RgbImage> {
    let status = Command::new("pdftoppm")
        .args(["-r", "50", "-png", pdf])
        .arg(dir.join("page"))
        .status()
        .expect("pdftoppm runs");
    assert!(status.success());
    (1..)
        .map(|n| dir.join(format!("page-{n}.png")))
        .take_while(|f| f.exists())
        .map(|f| image::open(&f).expect("a page picture").to_rgb8())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_pdfs_keep_every_panel_whole_under_a_header_with_title_and_range() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let sink = SmtpSink::start(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let pdf = send_pdf_report(
        &h,
        &sink,
        dir.path(),
        "long",
        &h.stub.url("/d/uid1/long?panels=12&panelHeight=300"),
        "    title: 運用ダッシュボード\n    timezone: Asia/Tokyo\n    \
         pdf: {paper: a4, landscape: true, footer: \"Internal — {{name}}\"}\n",
    )
    .await;
    eprintln!(
        "a 12-panel report rendered and sent in {:?}",
        started.elapsed()
    );

    // Header and footer on every page, in Japanese too.
    let pages = pdf_page_texts(&pdf);
    // 12 panels of 300 px under a 50 px title: three panels a page on A4 landscape.
    assert_eq!(pages.len(), 4, "{pages:?}");
    for (i, page) in pages.iter().enumerate() {
        assert!(
            page.contains("運用ダッシュボード"),
            "page {}: {page}",
            i + 1
        );
        assert!(page.contains("(Asia/Tokyo)"), "page {}: {page}", i + 1);
        assert!(page.contains("Internal — long"), "page {}: {page}", i + 1);
        let compact: String = page.split_whitespace().collect();
        assert!(
            compact.contains(&format!("{}/4", i + 1)),
            "page {}: {page}",
            i + 1
        );
    }

    // No panel is cut: on every page, each run of panel rows is one whole panel.
    let mut whole = 0;
    let pictures = pdf_page_pictures(&pdf, dir.path());
    assert_eq!(pictures.len(), 4);
    for (n, page) in (1..).zip(&pictures) {
        let runs = panel_runs(page);
        // 292 drawn CSS pixels a panel, 1600 CSS pixels shown 11 in wide at 50 dpi.
        let expected = 292.0 * 11.0 * 50.0 / 1600.0;
        for run in &runs {
            assert!(
                (*run as f64 - expected).abs() <= 3.0,
                "page {n}: a panel {run} px tall instead of {expected:.0}: cut across pages ({runs:?})"
            );
        }
        whole += runs.len();
    }
    assert_eq!(whole, 12, "every panel printed once, whole");
    drop(sink);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_of_a_real_scenes_dashboard_has_grafanas_title_on_every_page() {
    let Some(h) = Harness::start_frontend(&[]).await else {
        return;
    };
    let sink = SmtpSink::start(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let pdf = send_pdf_report(
        &h,
        &sink,
        dir.path(),
        "forty",
        &h.stub.url("/d/forty/x"),
        "",
    )
    .await;
    let pages = pdf_page_texts(&pdf);
    assert!(
        pages.len() > 1,
        "forty panels take more than a page: {pages:?}"
    );
    let total = pages.len();
    for (i, page) in pages.iter().enumerate() {
        // The title Grafana's API gives, read by the page (the report names none).
        assert!(page.contains("Dashboard forty"), "page {}: {page}", i + 1);
        let compact: String = page.split_whitespace().collect();
        assert!(
            compact.contains(&format!("{}/{total}", i + 1)),
            "page {}: {page}",
            i + 1
        );
    }
    drop(sink);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_last_good() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = daily_file(dir.path(), &h, 2525);
    let reports = Reports::open(&path, h.service.clone()).expect("valid");
    let names = |r: &Reports| -> Vec<String> {
        r.status()["reports"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["name"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(names(&reports), ["morning"]);
    // A mistake: the running reports stay as they were.
    let good = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, good.replace("daily at 08:00", "daily at 25:00")).expect("write");
    reports.tick_and_wait().await.expect("tick");
    assert_eq!(names(&reports), ["morning"]);
    assert_eq!(
        reports.status()["reports"][0]["schedule"],
        "0 8 * * * (Europe/Berlin)"
    );
    // A good change takes effect.
    let more = format!(
        "{good}  - name: evening\n    dashboard: {}\n    schedule: daily at 18:00\n    recipients: [a@example.org]\n",
        h.stub.url("/d/uid1/ops")
    );
    std::fs::write(&path, more).expect("write");
    reports.tick_and_wait().await.expect("tick");
    assert_eq!(names(&reports), ["morning", "evening"]);
    h.stop().await;
}

#[tokio::test]
async fn report_list_and_the_servers_reports_page() {
    if !crate::common::chromium_available() {
        return;
    }
    let stub = grafana_stub::GrafanaStub::start(None).await.expect("stub");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "smtp: {{host: 127.0.0.1, port: 2525, security: none, from: reports@example.org}}
reports:
  - name: weekly-ops
    dashboard: {}
    schedule: weekly on monday at 08:00
    timezone: Europe/Berlin
    recipients: [ops@example.org]
",
        stub.url("/d/uid1/ops")
    );
    let path = dir.path().join("reports.yaml");
    std::fs::write(&path, &text).expect("write");
    let bin = env!("CARGO_BIN_EXE_grender");
    let list = Command::new(bin)
        .args(["report", "list", "--config=/dev/null", "--reports"])
        .arg(&path)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(
        stdout.contains("weekly-ops") && stdout.contains("0 8 * * 1 (Europe/Berlin)"),
        "{stdout}"
    );
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, text.replace("weekly on monday", "weekly on mondy")).expect("write");
    let bad = Command::new(bin)
        .args(["report", "list", "--config=/dev/null", "--reports"])
        .arg(&broken)
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("broken.yaml:5: report \"weekly-ops\""),
        "{stderr}"
    );

    // The server schedules them and shows them, behind the token.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut server = Command::new(bin)
        .args([
            "server",
            "--config=/dev/null",
            "--server.auth-token=reports-token",
        ])
        .arg(format!("--server.addr=127.0.0.1:{port}"))
        .arg("--reports")
        .arg(&path)
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/reports");
    let mut status = None;
    for _ in 0..100 {
        if let Ok(r) = client
            .get(&url)
            .header("X-Auth-Token", "reports-token")
            .send()
            .await
        {
            status = Some((r.status().as_u16(), r.text().await.unwrap_or_default()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unauthorised = client.get(&url).send().await.map(|r| r.status().as_u16());
    let _ = server.kill();
    let _ = server.wait();
    let (code, body) = status.expect("the server answered");
    assert_eq!(code, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["reports"][0]["name"], "weekly-ops");
    assert!(json["reports"][0]["next_run"].as_str().is_some(), "{json}");
    assert_eq!(unauthorised.ok(), Some(401));
    assert!(dir.path().join("reports.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_taller_than_a_page_is_cut_between_its_rows() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let sink = SmtpSink::start(None);
    let dir = tempfile::tempdir().expect("tempdir");
    // A table of 60 rows (1688 px) and a chart: the table cannot fit on one page.
    let dashboard = h.stub.url("/d/uid1/t?panels=2&panelHeight=300&table=60");
    let pdf = send_pdf_report(&h, &sink, dir.path(), "table", &dashboard, "").await;
    // 1600 CSS pixels shown 11 in wide at 50 dpi: a 28 px row, a 292 px chart.
    let px = |css: f64| css * 11.0 * 50.0 / 1600.0;
    let (mut rows, mut charts) = (0, 0);
    let pictures = pdf_page_pictures(&pdf, dir.path());
    let pages = pictures.len();
    for (n, page) in (1..).zip(&pictures) {
        for run in panel_runs(page) {
            let run = run as f64;
            if (run - px(28.0)).abs() <= 2.0 {
                rows += 1;
            } else if (run - px(292.0)).abs() <= 3.0 {
                charts += 1;
            } else {
                panic!("page {n}: a run {run} px tall: a table row or the chart cut across pages");
            }
        }
    }
    assert!(pages >= 2, "the table takes more than one page");
    assert_eq!(
        (rows, charts),
        (30, 1),
        "every drawn row and the chart, whole, once"
    );
    drop(sink);
    h.stop().await;
}
