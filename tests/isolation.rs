//! Nothing a render creates may reach a later render of another viewer: pop-ups, workers,
//! cached answers. Each test plays the attacker's page and then checks, from the
//! stand-in's request log, what the leftovers could do with the next renders' keys.

use crate::common;

use std::time::Duration;

use common::{Harness, TOKEN};

/// Renders `path` on the stand-in as the viewer with `key`.
async fn render_as(h: &Harness, path: &str, key: &str) -> common::Rendered {
    h.stub.allow_key(key);
    let url = h.render_url(
        &h.stub.url(path),
        &[
            ("renderKey", key),
            ("domain", "127.0.0.1"),
            ("height", "500"),
        ],
    );
    h.get_with(&url, &[("X-Auth-Token", TOKEN)]).await
}

/// The render keys the stand-in saw on `/leak` calls, by who made them.
fn leaks(h: &Harness) -> Vec<(String, Option<String>)> {
    h.stub
        .seen_at("/leak")
        .into_iter()
        .map(|s| (s.query, s.render_key))
        .collect()
}

#[tokio::test]
async fn pop_ups_and_workers_of_a_render_never_see_later_render_keys() {
    // One tab, so every render would reuse the attacker's context if it survived.
    let Some(h) = Harness::start(&["--render.concurrency=1"]).await else {
        return;
    };
    let r = render_as(&h, "/hostile", "key-attacker").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The control: the page's own call carried its key, so the log shows what a leftover
    // could do.
    assert!(
        leaks(&h)
            .iter()
            .any(|(q, k)| q.contains("from=page") && k.as_deref() == Some("key-attacker")),
        "the page's own /leak call was not seen: {:?}",
        leaks(&h)
    );
    let victims: Vec<String> = (0..10).map(|i| format!("key-victim-{i}")).collect();
    for key in &victims {
        let r = render_as(&h, "/d-solo/victim/p", key).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // Give anything still alive time to call home with the last key.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stolen: Vec<_> = leaks(&h)
        .into_iter()
        .filter(|(_, k)| k.as_ref().is_some_and(|k| victims.contains(k)))
        .collect();
    assert!(stolen.is_empty(), "leftovers used later keys: {stolen:?}");
    // No pop-up ever loaded, with or without an opener.
    let popups = h.stub.seen_at("/leak-popup");
    assert!(popups.is_empty(), "pop-ups opened: {popups:?}");
    h.stop().await;
}

#[tokio::test]
async fn a_cacheable_per_viewer_answer_is_fetched_anew_for_every_viewer() {
    let Some(h) = Harness::start(&["--render.concurrency=1"]).await else {
        return;
    };
    let viewers: Vec<String> = (0..6).map(|i| format!("key-viewer-{i}")).collect();
    for key in &viewers {
        let r = render_as(&h, "/cached", key).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // Every viewer's page saw its own answer, asked of the server with its own key...
    let asked: Vec<Option<String>> = h
        .stub
        .seen_at("/api/datasources/proxy/uid/viewer/who")
        .into_iter()
        .map(|s| s.render_key)
        .collect();
    let saw: Vec<String> = h
        .stub
        .seen_at("/leak")
        .into_iter()
        .filter(|s| s.query.contains("from=cached"))
        .map(|s| s.query)
        .collect();
    for key in &viewers {
        assert!(
            asked.iter().any(|k| k.as_deref() == Some(key.as_str())),
            "{key}'s answer came from the cache: server saw {asked:?}"
        );
        assert!(
            saw.iter().any(|q| q.ends_with(&format!("saw={key}"))),
            "{key}'s page did not see its own answer: {saw:?}"
        );
    }
    // ...while Grafana's static assets still come from the shared cache: the 8 MiB
    // bundle of the stand-in's dashboards is fetched once for several renders.
    let bundled = "/d-solo/warm/p?bundle=64";
    for key in ["key-a", "key-b", "key-c"] {
        assert_eq!(render_as(&h, bundled, key).await.status, 200);
    }
    let fetched = h.stub.seen_at("/public/build/app.64k.js").len();
    assert_eq!(fetched, 1, "static assets were not cached across renders");
    h.stop().await;
}

/// Accepts TCP connections on a free loopback port and counts them.
async fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(conn);
        }
    });
    (port, count)
}

#[tokio::test]
async fn allowed_origins_fence_frames_websockets_and_late_navigations() {
    let (allowed_ws, allowed_hits) = counting_listener().await;
    let (other_ws, other_hits) = counting_listener().await;
    let Some(h) = Harness::start_for(move |stub| {
        vec![
            format!(
                "--server.allowed-origin=http://127.0.0.1:{}",
                stub.addr.port()
            ),
            format!("--server.allowed-origin=http://127.0.0.1:{allowed_ws}"),
        ]
    })
    .await
    else {
        return;
    };
    let port = h.stub.addr.port();
    // A Text panel's iframe of "an internal service" (the stand-in under another name).
    let frame = format!("http://localhost:{port}/probe.svg?framed=1");
    let target = h.dashboard(
        "/d-solo/fenced/p",
        &format!(
            "frame={}",
            url::form_urlencoded::byte_serialize(frame.as_bytes()).collect::<String>()
        ),
    );
    let r = h.render(&target, &[("height", "500")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let framed: Vec<_> = h
        .stub
        .seen()
        .into_iter()
        .filter(|s| s.query.contains("framed=1"))
        .collect();
    assert!(
        framed.is_empty(),
        "the other origin's frame was loaded: {framed:?}"
    );

    // WebSockets: to an allowed origin they connect (the control), elsewhere they do not.
    for (to, hits, expected) in [
        (
            format!("ws://127.0.0.1:{allowed_ws}/live"),
            &allowed_hits,
            true,
        ),
        (
            format!("ws://localhost:{other_ws}/live"),
            &other_hits,
            false,
        ),
    ] {
        let target = h.dashboard(
            "/socket",
            &format!(
                "to={}",
                url::form_urlencoded::byte_serialize(to.as_bytes()).collect::<String>()
            ),
        );
        let r = h.render(&target, &[("height", "500")]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        // The page's and its worker's.
        let connections = hits.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            connections,
            if expected { 2 } else { 0 },
            "WebSockets to {to}"
        );
    }

    // A page that navigates itself elsewhere after loading is an error, not a picture.
    let away = format!("http://localhost:{port}/d-solo/elsewhere/p");
    let target = h.dashboard(
        "/navigate-away",
        &format!(
            "to={}",
            url::form_urlencoded::byte_serialize(away.as_bytes()).collect::<String>()
        ),
    );
    let r = h.render(&target, &[("height", "500")]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(h.stub.seen_at("/d-solo/elsewhere/").is_empty());
    h.stop().await;
}
