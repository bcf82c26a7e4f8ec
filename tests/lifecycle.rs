//! Chromium's life: crashes are survived, and no Chromium outlives the service.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Harness;
use common::proc::{alive_in_group, processes, read};

const SOLO: &str = "/d-solo/uid1/panel";

fn wait_until_gone(pgid: i32, within: Duration) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let alive = alive_in_group(pgid);
        if alive.is_empty() || start.elapsed() > within {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Like [`wait_until_gone`], without blocking the test's runtime (which may be what
/// has to close Chromium).
async fn wait_until_gone_async(pgid: i32, within: Duration) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let alive = alive_in_group(pgid);
        if alive.is_empty() || start.elapsed() > within {
            return alive;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn current_pid(h: &Harness) -> (u32, u64) {
    let b = h.browser();
    (b.pid, b.generation)
}

#[tokio::test]
async fn a_killed_chromium_fails_its_render_at_once_and_is_relaunched() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let (pid, generation) = current_pid(&h);
    let slow = h.dashboard(SOLO, "delay=20000");
    let started = Instant::now();
    let (r, _) = tokio::join!(
        h.render(&slow, &[("height", "500"), ("timeout", "60")]),
        async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    );
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().starts_with("[browser-crashed]") && r.text().contains("Chromium exited"),
        "{}",
        r.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the render was not failed at once"
    );
    assert!(
        wait_until_gone(pid as i32, Duration::from_secs(5)).is_empty(),
        "old Chromium tree left running"
    );

    // The next render waits for the relaunched browser and succeeds.
    let img = h
        .render(&h.dashboard(SOLO, ""), &[("height", "500")])
        .await
        .png();
    assert!(img.is_drawn(500, 250));
    let (new_pid, new_generation) = current_pid(&h);
    assert!(new_generation > generation && new_pid != pid);
    h.stop().await;
}

#[tokio::test]
async fn a_crashed_tab_fails_its_render_and_the_browser_keeps_working() {
    let Some(h) = Harness::start(&[]).await else {
        return;
    };
    let (pid, generation) = current_pid(&h);
    let slow = h.dashboard(SOLO, "delay=20000");
    let (r, _) = tokio::join!(
        h.render(&slow, &[("height", "500"), ("timeout", "60")]),
        async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            // Kill every renderer process, as the OOM killer would.
            for p in processes() {
                let cmdline = read(p.pid, "cmdline").unwrap_or_default();
                if p.pgid == pid as i32 && cmdline.contains("--type=renderer") {
                    unsafe { libc::kill(p.pid, libc::SIGKILL) };
                }
            }
        }
    );
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().starts_with("[page-crashed]") && r.text().contains("tab crashed"),
        "{}",
        r.text()
    );
    let img = h
        .render(&h.dashboard(SOLO, ""), &[("height", "500")])
        .await
        .png();
    assert!(img.is_drawn(500, 250));
    assert_eq!(
        current_pid(&h),
        (pid, generation),
        "the browser itself was not restarted"
    );
    h.stop().await;
}

/// Starts the real binary and returns it with its Chromium's pid once ready.
fn spawn_grender(extra: &[&str]) -> Option<(std::process::Child, i32)> {
    if !common::chromium_available() {
        return None;
    }
    let addr = if extra.iter().any(|a| a.starts_with("--server.addr")) {
        None
    } else {
        Some("--server.addr=127.0.0.1:0")
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_grender"))
        .args(["server", "--config=/dev/null", "--log.format=text"])
        .args(addr)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("grender starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.expect("log line");
        if line.contains("Chromium is ready") {
            break;
        }
    }
    // Keep draining so grender never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let me = child.id() as i32;
    let chromium = processes()
        .into_iter()
        .find(|p| p.ppid == me)
        .map(|p| p.pid)
        .expect("Chromium is a child of grender");
    Some((child, chromium))
}

#[test]
fn sigterm_and_sigint_stop_chromium_with_the_service() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let Some((mut child, chromium)) = spawn_grender(&[]) else {
            return;
        };
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().expect("exits");
        assert!(status.success(), "signal {signal}: {status:?}");
        assert!(
            wait_until_gone(chromium, Duration::from_secs(5)).is_empty(),
            "Chromium outlived grender (signal {signal})"
        );
    }
}

#[test]
fn sigkill_of_the_service_takes_chromium_down_too() {
    let Some((mut child, chromium)) = spawn_grender(&[]) else {
        return;
    };
    assert!(!alive_in_group(chromium).is_empty());
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let left = wait_until_gone(chromium, Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "Chromium processes outlived a SIGKILLed grender: {left:?}"
    );
}

#[test]
fn sandbox_on_with_a_no_sandbox_flag_is_refused_at_start_up() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_grender"))
            .args(["server", "--config=/dev/null", "--server.addr=127.0.0.1:0"])
            .args(args)
            .env_remove("BROWSER_FLAG")
            .env_remove("RENDERING_ARGS")
            .envs(env.iter().copied())
            .output()
            .expect("runs")
    };
    for out in [
        run(
            &[
                "--browser.sandbox=on",
                "--browser.flag=--disable-gpu --no-sandbox",
            ],
            &[],
        ),
        run(
            &["--browser.sandbox=on"],
            &[("RENDERING_ARGS", "--disable-gpu,--no-sandbox")],
        ),
        run(
            &[],
            &[("BROWSER_SANDBOX", "on"), ("BROWSER_FLAG", "--no-sandbox")],
        ),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "not one line: {stderr}"
        );
        assert!(
            stderr.starts_with("grender: ")
                && stderr.contains("browser.sandbox=on")
                && stderr.contains("--no-sandbox"),
            "{stderr}"
        );
    }
}

#[test]
fn a_bad_option_is_one_line_and_exit_code_2() {
    for args in [
        vec!["server", "--browser.min-width=wide"],
        vec!["server", "--server.addr=nowhere"],
        vec!["server", "--browser.max-width=10"],
        vec!["server", "--no-such-option"],
        vec!["server", "--api.default-encoding=gif"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_grender"))
            .args(&args)
            .arg("--config=/dev/null")
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: not one line: {stderr}"
        );
        assert!(stderr.starts_with("grender: "), "{stderr}");
    }
}

#[tokio::test]
async fn recycling_replaces_chromium_without_dropping_a_render() {
    let Some(h) = Harness::start(&["--browser.recycle-after=3", "--render.concurrency=2"]).await
    else {
        return;
    };
    let (first_pid, first_generation) = current_pid(&h);
    let slow = h.dashboard("/d-solo/slow/p", "delay=2500");
    let (long, quick) = tokio::join!(h.render(&slow, &[("height", "500")]), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut statuses = Vec::new();
        for i in 0..6 {
            let r = h
                .render(
                    &h.dashboard(&format!("/d-solo/q{i}/p"), ""),
                    &[("height", "500")],
                )
                .await;
            statuses.push((r.status, r.text()));
        }
        statuses
    });
    // The slow render started on the first browser and finished on it after it was replaced.
    assert_eq!(long.status, 200, "{}", long.text());
    assert!(long.png().is_drawn(500, 250));
    for (status, text) in quick {
        assert_eq!(status, 200, "{text}");
    }
    let (_, generation) = current_pid(&h);
    // The old browser serves until its successor is up, so the exact count varies.
    assert!(
        generation > first_generation,
        "never recycled: generation {generation}"
    );
    let left = wait_until_gone_async(first_pid as i32, Duration::from_secs(10)).await;
    assert!(
        left.is_empty(),
        "the replaced Chromium was not closed: {left:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_memory_budget_recycles_chromium() {
    // 1 MiB: every check finds Chromium over budget.
    let Some(h) = Harness::start(&["--browser.memory-budget=1"]).await else {
        return;
    };
    let (_, generation) = current_pid(&h);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let img = h
        .render(&h.dashboard(SOLO, ""), &[("height", "500")])
        .await
        .png();
    assert!(img.is_drawn(500, 250));
    let (_, now) = current_pid(&h);
    assert!(now > generation, "not recycled: generation {now}");
    h.stop().await;
}

/// Live Chromium main processes started by this test process.
fn our_chromiums() -> Vec<i32> {
    let me = std::process::id() as i32;
    processes()
        .into_iter()
        .filter(|p| p.ppid == me && !p.is_zombie())
        .map(|p| p.pid)
        .collect()
}

#[tokio::test]
async fn process_isolation_gives_every_render_a_fresh_chromium() {
    let Some(h) = Harness::start(&["--render.isolation=process", "--render.concurrency=2"]).await
    else {
        return;
    };
    let mut seen = std::collections::HashSet::new();
    for i in 0..4 {
        let r = h
            .render(
                &h.dashboard(&format!("/d-solo/p{i}/p"), "delay=100"),
                &[("height", "500")],
            )
            .await;
        assert!(r.png().is_drawn(500, 250));
        seen.extend(our_chromiums());
    }
    // Four renders, each on its own browser, plus the spares launched ahead.
    assert!(seen.len() >= 5, "browsers seen: {seen:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let alive = our_chromiums();
    assert!(alive.len() <= 2, "used browsers were not closed: {alive:?}");
    h.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(our_chromiums().is_empty(), "spares outlived the service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_renders_finish_up_to_the_shutdown_timeout() {
    if !common::chromium_available() {
        return;
    }
    let stub = grafana_stub::GrafanaStub::start(None).await.unwrap();
    // Within the limit the render completes; past it, the render is cut off (its client
    // gets a 5xx or a closed connection) and the service still stops promptly.
    for (limit, delay, completes) in [("10s", 1500, true), ("1s", 15000, false)] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (mut child, _) = spawn_grender(&[
            &format!("--server.addr=127.0.0.1:{port}"),
            &format!("--server.shutdown-timeout={limit}"),
        ])
        .expect("starts");
        let target = url::form_urlencoded::byte_serialize(
            stub.url(&format!("/d-solo/s/p?delay={delay}")).as_bytes(),
        )
        .collect::<String>();
        let request = tokio::spawn(async move {
            let url = format!("http://127.0.0.1:{port}/render?height=500&timeout=60&url={target}");
            match reqwest::Client::new()
                .get(url)
                .header("X-Auth-Token", "-")
                .send()
                .await
            {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            }
        });
        tokio::time::sleep(Duration::from_millis(700)).await;
        let stopping = Instant::now();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{limit}: {status:?}");
        let answered = request.await.unwrap();
        assert_eq!(
            answered == 200,
            completes,
            "shutdown-timeout {limit}: answered {answered}"
        );
        if limit == "1s" {
            assert!(
                stopping.elapsed() < Duration::from_secs(8),
                "did not stop at the limit: {:?}",
                stopping.elapsed()
            );
        }
    }
}
