//! `/render/csv`: the download of Grafana's d-csv page, with its name.

use crate::common;

use common::{Harness, RENDER_KEY, TOKEN};

fn csv_url(h: &Harness, target: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&h.url("/render/csv")).unwrap();
    url.query_pairs_mut().append_pair("url", target);
    url.query_pairs_mut()
        .append_pair("renderKey", RENDER_KEY)
        .append_pair("domain", "127.0.0.1");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

#[tokio::test]
async fn the_downloaded_csv_is_answered_with_its_name() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let target = h
        .stub
        .url("/d-csv/uid1?panelId=1&render=1&orgId=1&timezone=browser");
    let r = h
        .get_with(
            &csv_url(&h, &target, &[("encoding", "csv"), ("timeout", "30")]),
            &[("X-Auth-Token", TOKEN)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "text/csv");
    assert_eq!(r.text(), grafana_stub::csv_body());
    let disposition = r.headers["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        disposition,
        format!("attachment; filename=\"{}\"", grafana_stub::CSV_NAME)
    );
    // Grafana's acceptance pattern for the name.
    assert!(
        grafana_stub::CSV_NAME.starts_with("Prometheus_ 1-data-")
            && grafana_stub::CSV_NAME.ends_with(".csv")
    );

    // filePath renames it (base name only, .csv enforced); non-ASCII names are encoded.
    let r = h
        .get_with(
            &csv_url(&h, &target, &[("filePath", "/tmp/x/../report")]),
            &[("X-Auth-Token", TOKEN)],
        )
        .await;
    assert_eq!(
        r.headers["content-disposition"],
        "attachment; filename=\"report.csv\""
    );
    let named = h.stub.url("/d-csv/uid1?name=Donn%C3%A9es.csv");
    let r = h
        .get_with(&csv_url(&h, &named, &[]), &[("X-Auth-Token", TOKEN)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.headers["content-disposition"].to_str().unwrap();
    assert!(
        d.contains("filename*=UTF-8''Donn%C3%A9es.csv") && !d.contains('/'),
        "{d}"
    );
    h.stop().await;
}

#[tokio::test]
async fn csv_errors_are_clear_and_leave_no_files() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let auth = [("X-Auth-Token", TOKEN)];
    let target = h.stub.url("/d-csv/uid1");
    assert_eq!(h.get_with(&h.url("/render/csv"), &auth).await.status, 400);
    assert_eq!(
        h.get_with(&h.url("/render/csv?url=file:///etc/passwd"), &auth)
            .await
            .status,
        403
    );
    assert_eq!(
        h.get_with(&csv_url(&h, &target, &[]), &[]).await.status,
        401
    );
    let r = h
        .get_with(&csv_url(&h, &target, &[("encoding", "png")]), &auth)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("'csv'"), "{}", r.text());
    // A page that never downloads: bounded by the request deadline.
    let r = h
        .get_with(
            &csv_url(
                &h,
                &h.stub.url("/d-csv/uid1?delay=20000"),
                &[("timeout", "1")],
            ),
            &auth,
        )
        .await;
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.text().contains("CSV download"), "{}", r.text());
    // A refused render key: Grafana's login page never downloads; said at once, not after
    // the readiness timeout.
    h.stub.allow_key("another-viewers-key");
    h.stub.revoke_key(RENDER_KEY);
    let r = h.get_with(&csv_url(&h, &target, &[]), &auth).await;
    assert!(
        r.text().contains("login page") && !r.text().contains("readiness"),
        "{} {}",
        r.status,
        r.text()
    );
    h.stub.allow_key(RENDER_KEY);
    h.stop().await;
    // Directories of this process: other tests running in it at the same moment may still be
    // downloading (`cargo test` runs tests on threads), so a directory counts as left behind
    // only if it is still there after theirs would have finished.
    let ours = format!("grender-csv-{}-", std::process::id());
    let left = || -> Vec<_> {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&ours))
            .map(|e| e.file_name())
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !left().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let left = left();
    assert!(
        left.is_empty(),
        "download directories left behind: {left:?}"
    );
}

#[tokio::test]
async fn a_csv_download_is_bounded_in_size_and_in_waiting() {
    let Some(h) = Harness::start(&[
        "--render.max-csv-bytes=100",
        "--browser.readiness.timeout=1s",
        "--render.concurrency=1",
    ])
    .await
    else {
        return;
    };
    // The stand-in's CSV is a few hundred bytes: over the cap.
    assert!(grafana_stub::csv_body().len() > 100);
    let target = h.stub.url("/d-csv/big?panelId=1");
    let r = h
        .get_with(&csv_url(&h, &target, &[]), &[("X-Auth-Token", TOKEN)])
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("render.max-csv-bytes"), "{}", r.text());
    // A page that never downloads ends at the readiness timeout, not the request's 60 s.
    let target = h.stub.url("/d-csv/never?panelId=1&delay=30000");
    let r = h
        .get_with(&csv_url(&h, &target, &[]), &[("X-Auth-Token", TOKEN)])
        .await;
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.text().contains("CSV download"), "{}", r.text());
    // The tab is fine for the next render.
    let h2 = h
        .render(&h.stub.url("/d-solo/after/p"), &[("height", "500")])
        .await;
    assert_eq!(h2.status, 200, "{}", h2.text());
    h.stop().await;
}
