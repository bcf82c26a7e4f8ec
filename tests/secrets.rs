//! No secret leaves the process: Chromium starts with a cleared environment, and neither
//! answers nor log lines repeat a URL's user-info or query, a token or a render key.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::RENDER_KEY;
use common::proc::{descendants, processes};
use grafana_stub::GrafanaStub;

const TOKEN: &str = "auth-token-s3cr3t-4711";
const OTHER_SECRET: &str = "glsa_grafana-sa-token-s3cr3t";

fn environ(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).to_string())
            .collect(),
    )
}

#[tokio::test]
async fn chromium_gets_no_secret_and_errors_repeat_no_url_secrets() {
    if !common::chromium_available() {
        return;
    }
    let stub = GrafanaStub::start(Some(RENDER_KEY)).await.expect("stub");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_grender"))
        .args([
            "server",
            "--config=/dev/null",
            "--log.level=debug",
            "--browser.timezone=Asia/Tokyo",
            "--browser.readiness.give-up-on-first-query=300ms",
        ])
        .arg(format!("--server.addr=127.0.0.1:{port}"))
        .env("AUTH_TOKEN", TOKEN)
        .env("GF_RENDERING_RENDERER_TOKEN", OTHER_SECRET)
        .env("LC_ALL", "C.UTF-8")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("grender starts");
    let logs = common::collect_stderr(&mut child);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..150 {
        if let Ok(r) = client.get(format!("{base}/version")).send().await
            && r.text().await.unwrap_or_default().contains("Chrome/")
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ready,
        "grender did not start: {:?}",
        logs.lock().map(|l| l.clone())
    );
    let render = |target: String, key: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let mut url = url::Url::parse(&format!("{base}/render")).expect("url");
            url.query_pairs_mut()
                .append_pair("url", &target)
                .append_pair("renderKey", key)
                .append_pair("domain", "127.0.0.1")
                .append_pair("height", "500")
                .append_pair("timeout", "20");
            let resp = client
                .get(url.as_str())
                .header("X-Auth-Token", TOKEN)
                .send()
                .await
                .expect("grender answers");
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
    };

    // One good render, so that Chromium's renderer processes exist.
    let (status, body) = render(stub.url("/d-solo/env/panel"), RENDER_KEY).await;
    assert_eq!(status, 200, "{body}");

    // Navigation failure: nothing listens on the port; the URL carries user-info and a query.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let (status, nav_body) = render(
        format!("http://navuser:navpass@127.0.0.1:{dead}/d/x?secret=nav-query-s3cr3t"),
        RENDER_KEY,
    )
    .await;
    assert_eq!(status, 500, "{nav_body}");
    assert!(nav_body.starts_with("[connect-refused]"), "{nav_body}");
    assert!(
        nav_body.contains(&format!("http://127.0.0.1:{dead}/d/x")),
        "{nav_body}"
    );

    // Login page: the stand-in refuses this render key and redirects to /login.
    let login_target = stub
        .url("/d-solo/env/panel?secret=login-query-s3cr3t")
        .replace("http://", "http://loginuser:loginpass@");
    let (status, login_body) = render(login_target, "a-rejected-render-key").await;
    assert_eq!(status, 500, "{login_body}");
    assert!(login_body.starts_with("[login-page]"), "{login_body}");

    for body in [&nav_body, &login_body] {
        for secret in [
            "navuser",
            "navpass",
            "nav-query-s3cr3t",
            "loginuser",
            "loginpass",
            "login-query-s3cr3t",
            "secret=",
            TOKEN,
            RENDER_KEY,
            "a-rejected-render-key",
        ] {
            assert!(
                !body.contains(secret),
                "the answer repeats {secret:?}: {body}"
            );
        }
    }

    // Every process of grender's tree: Chromium and its renderers, zygotes and utilities.
    // Chromium's children rewrite their process title over the memory /proc shows as their
    // environment, so only the browser process (exec'd by grender) shows it whole; a secret
    // can only reach the others through it. Secrets must be absent from every one.
    let me = child.id() as i32;
    let tree = descendants(me);
    assert!(
        tree.len() >= 2,
        "expected Chromium's processes under grender: {tree:?}"
    );
    let browsers: Vec<i32> = processes()
        .into_iter()
        .filter(|p| p.ppid == me)
        .map(|p| p.pid)
        .collect();
    let mut intact = 0;
    for pid in &tree {
        let Some(env) = environ(*pid) else { continue };
        let joined = env.join("\n");
        for secret in [TOKEN, OTHER_SECRET, "AUTH_TOKEN="] {
            assert!(
                !joined.contains(secret),
                "process {pid} has {secret:?} in its environment: {env:?}"
            );
        }
        if browsers.contains(pid) {
            // The environment read is the real one: the time zone and locale Chromium was given.
            assert!(env.iter().any(|v| v == "TZ=Asia/Tokyo"), "{pid}: {env:?}");
            assert!(env.iter().any(|v| v == "LC_ALL=C.UTF-8"), "{pid}: {env:?}");
            assert!(env.iter().any(|v| v.starts_with("PATH=")), "{pid}: {env:?}");
            intact += 1;
        }
    }
    assert!(
        intact >= 1,
        "could not read the browser process's environment: {browsers:?}"
    );
    // Our own environment does have them, so the test can tell.
    let own = environ(child.id() as i32).unwrap_or_default().join("\n");
    assert!(own.contains(TOKEN) && own.contains(OTHER_SECRET));

    // SAFETY: a signal to the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let logs = logs.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(logs.contains("render failed"), "{logs}");
    for secret in [
        "navuser",
        "navpass",
        "nav-query-s3cr3t",
        "loginuser",
        "loginpass",
        "login-query-s3cr3t",
        TOKEN,
        OTHER_SECRET,
        RENDER_KEY,
        "a-rejected-render-key",
    ] {
        assert!(!logs.contains(secret), "the log repeats {secret:?}: {logs}");
    }
}
