//! Chromium's sandbox: kept when grender runs as a non-root user; where it cannot start (no
//! user namespaces, as in Docker's default seccomp profile) `browser.sandbox=auto` renders
//! without it and says so, and `browser.sandbox=on` refuses with the fix.
//!
//! These tests switch to uid 65534, so they need root (as CI has); elsewhere they are skipped.

use crate::common;
use common::proc::{processes, read};

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grafana_stub::GrafanaStub;

const NOBODY: u32 = 65534;

/// grender running as another user, with its stderr collected; killed on drop.
struct Unprivileged {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Drop for Unprivileged {
    fn drop(&mut self) {
        // SAFETY: a signal to the child we started.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn can_switch_users() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping: switching to uid {NOBODY} needs root");
        return false;
    }
    // The sandbox itself needs user namespaces; a host that forbids them cannot show it.
    let userns = Command::new("unshare")
        .args(["--user", "true"])
        .uid(NOBODY)
        .gid(NOBODY)
        .status()
        .is_ok_and(|s| s.success());
    if !userns {
        eprintln!("skipping: this host forbids user namespaces, so no sandbox can start here");
        return false;
    }
    common::chromium_available()
}

/// Starts a copy of the grender binary (readable by uid 65534) through `wrapper`, which ends
/// by running the binary with the arguments it is given.
fn start(wrapper: &[&str], extra: &[&str]) -> Unprivileged {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let bin = dir.path().join("grender");
    std::fs::copy(env!("CARGO_BIN_EXE_grender"), &bin).expect("copies the binary");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut cmd = Command::new(
        wrapper
            .first()
            .copied()
            .unwrap_or(bin.to_str().expect("utf-8")),
    );
    if !wrapper.is_empty() {
        cmd.args(&wrapper[1..]).arg(&bin);
    }
    cmd.args([
        "server",
        "--config=/dev/null",
        "--log.format=json",
        &format!("--server.addr=127.0.0.1:{port}"),
        &format!("--server.auth-token={}", common::TOKEN),
    ])
    .args(extra)
    .env("HOME", dir.path())
    .env("TMPDIR", dir.path())
    .current_dir(dir.path())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if wrapper.is_empty() {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let mut child = cmd.spawn().expect("grender starts");
    let stderr = common::collect_stderr(&mut child);
    Unprivileged {
        child,
        port,
        stderr,
        _dir: dir,
    }
}

/// Renders one panel of the stand-in through `grender`, waiting up to 30 s for it to listen.
async fn render(grender: &Unprivileged, stub: &GrafanaStub) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut url =
        url::Url::parse(&format!("http://127.0.0.1:{}/render", grender.port)).expect("url");
    url.query_pairs_mut()
        .append_pair("url", &stub.url("/d-solo/sandbox/panel"))
        .append_pair("renderKey", common::RENDER_KEY)
        .append_pair("domain", "127.0.0.1")
        .append_pair("timeout", "20");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client
            .get(url.clone())
            .header("X-Auth-Token", common::TOKEN)
            .send()
            .await
        {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                let text = if body.starts_with(b"\x89PNG") {
                    format!("PNG of {} bytes", body.len())
                } else {
                    String::from_utf8_lossy(&body).into_owned()
                };
                return (status, text);
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "grender never answered: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The processes of the Chromium started by `parent`: (pid, command line, seccomp mode).
fn chromium_processes(parent: u32) -> Vec<(u32, String, String)> {
    let all = processes();
    let groups: Vec<i32> = all
        .iter()
        .filter(|p| p.ppid == parent as i32)
        .map(|p| p.pid)
        .collect();
    all.into_iter()
        .filter(|p| groups.contains(&p.pgid))
        .filter_map(|p| {
            let cmdline = read(p.pid, "cmdline")?.replace('\0', " ");
            let seccomp = read(p.pid, "status")?
                .lines()
                .find_map(|l| l.strip_prefix("Seccomp:").map(|v| v.trim().to_string()))
                .unwrap_or_default();
            Some((p.pid as u32, cmdline, seccomp))
        })
        .collect()
}

#[tokio::test]
async fn a_non_root_grender_keeps_chromiums_sandbox() {
    if !can_switch_users() {
        return;
    }
    let stub = GrafanaStub::start(Some(common::RENDER_KEY))
        .await
        .expect("stub");
    let grender = start(&[], &[]);
    let (status, body) = render(&grender, &stub).await;
    assert_eq!(status, 200, "{body}");
    let procs = chromium_processes(grender.child.id());
    assert!(!procs.is_empty(), "no Chromium under grender");
    for (pid, cmdline, _) in &procs {
        assert!(
            !cmdline.contains("--no-sandbox"),
            "{pid} runs without the sandbox: {cmdline}"
        );
    }
    let renderers: Vec<_> = procs
        .iter()
        .filter(|(_, c, _)| c.contains("--type=renderer"))
        .collect();
    assert!(!renderers.is_empty(), "no renderer process: {procs:?}");
    for (pid, _, seccomp) in renderers {
        assert_eq!(
            seccomp, "2",
            "renderer {pid} is not confined by the sandbox's seccomp filter"
        );
    }
    let log = grender.stderr.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(log.contains(r#""sandbox":"on""#), "{log}");
    drop(grender);
}

/// Runs the binary as uid 65534 in a user namespace that may not create further ones, like a
/// container under Docker's default seccomp profile: Chromium's sandbox cannot start there.
const WITHOUT_USER_NAMESPACES: &[&str] = &[
    "unshare",
    "--user",
    "--map-root-user",
    "sh",
    "-c",
    "echo 1 > /proc/sys/user/max_user_namespaces && exec unshare --user --map-user=65534 --map-group=65534 \"$0\" \"$@\"",
];

#[tokio::test]
async fn without_user_namespaces_auto_renders_unsandboxed_and_on_refuses_with_the_fix() {
    if !can_switch_users() {
        return;
    }
    let stub = GrafanaStub::start(Some(common::RENDER_KEY))
        .await
        .expect("stub");

    let auto = start(WITHOUT_USER_NAMESPACES, &[]);
    let (status, body) = render(&auto, &stub).await;
    assert_eq!(status, 200, "{body}");
    let log = auto.stderr.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        log.contains("sandbox cannot start here"),
        "no warning: {log}"
    );
    drop(auto);

    let strict = start(WITHOUT_USER_NAMESPACES, &["--browser.sandbox=on"]);
    let (status, body) = render(&strict, &stub).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("user namespaces"), "no fix given: {body}");
    drop(strict);
}
