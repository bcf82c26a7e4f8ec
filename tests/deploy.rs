//! The packaging files agree with the code: ports, env names, probe paths, the entrypoint;
//! they are valid for the tools that read them (Kubernetes' schemas, Docker Compose); and the
//! official renderer's setting names land in grender's options (docs/upgrading.md).
//!
//! The validators come from scripts/deps.sh (`kubernetes-validate`, pinned, in
//! /opt/grender-tools; Debian's `docker-compose`). Without them these checks are skipped with
//! a notice, unless REQUIRE_CHROMIUM or CI is set (scripts/test and CI), where they must run.
//! The container image itself is built and checked by scripts/image-test (on demand).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml_ng::Value;

fn root(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
}

/// Every env name grender reads, taken from its own command line definition.
fn grender_env_names() -> HashSet<String> {
    use clap::CommandFactory;
    let cmd = grender::cli::Cli::command();
    let server = cmd.find_subcommand("server").unwrap();
    server
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().to_string())
        .collect()
}

#[test]
fn compose_wires_grafana_to_grender_by_service_name() {
    let compose: Value = serde_yaml_ng::from_str(&root("docker-compose.yml")).unwrap();
    let services = &compose["services"];
    let grafana = &services["grafana"]["environment"];
    let renderer = &services["renderer"];
    let server_url = grafana["GF_RENDERING_SERVER_URL"].as_str().unwrap();
    assert_eq!(
        server_url, "http://renderer:8081/render",
        "Grafana reaches the renderer by its service name"
    );
    let callback = grafana["GF_RENDERING_CALLBACK_URL"].as_str().unwrap();
    assert!(
        callback.starts_with("http://grafana:"),
        "the callback must not be localhost: {callback}"
    );
    assert_eq!(
        grafana["GF_RENDERING_RENDERER_TOKEN"], renderer["environment"]["AUTH_TOKEN"],
        "one shared token"
    );
    assert!(
        !grafana["GF_RENDERING_RENDERER_TOKEN"]
            .as_str()
            .unwrap()
            .contains("\"-\"")
    );
    assert!(
        renderer["expose"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|p| p.as_str() == Some("8081"))
    );
    let known = grender_env_names();
    for name in renderer["environment"].as_mapping().unwrap().keys() {
        assert!(
            known.contains(name.as_str().unwrap()),
            "grender does not read {name:?}"
        );
    }
    assert!(
        grafana["GF_SMTP_HOST"].is_string(),
        "SMTP placeholders for alert e-mails"
    );
}

#[test]
fn kubernetes_probes_ports_and_env_match_the_service() {
    let docs: Vec<Value> =
        serde_yaml_ng::Deserializer::from_str(&root("deploy/kubernetes/grender.yaml"))
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
    let kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let container = &kind("Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["ports"][0]["containerPort"].as_u64(), Some(8081));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(
            container[probe]["httpGet"]["port"], container["ports"][0]["name"],
            "{probe}"
        );
    }
    let known = grender_env_names();
    for env in container["env"].as_sequence().unwrap() {
        let name = env["name"].as_str().unwrap();
        assert!(known.contains(name), "grender does not read {name}");
    }
    // The budget (MiB of summed RSS, which counts shared pages once per process) fits the
    // container's limit: what the kernel charges is below the sum.
    let limit = container["resources"]["limits"]["memory"].as_str().unwrap();
    let limit_mib: u64 = match limit.split_at(limit.len() - 2) {
        (n, "Gi") => n.parse::<u64>().unwrap() * 1024,
        (n, "Mi") => n.parse().unwrap(),
        _ => panic!("memory limit {limit} not in Mi or Gi"),
    };
    let budget = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "BROWSER_MEMORY_BUDGET")
        .and_then(|e| e["value"].as_str()?.parse::<u64>().ok())
        .expect("BROWSER_MEMORY_BUDGET in the example");
    assert!(
        budget <= limit_mib,
        "budget {budget} MiB over the limit {limit}"
    );
    let service = kind("Service");
    assert_eq!(service["spec"]["ports"][0]["port"].as_u64(), Some(8081));
    assert_eq!(
        service["spec"]["selector"]["app"],
        kind("Deployment")["spec"]["template"]["metadata"]["labels"]["app"]
    );
    assert_eq!(
        kind("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"],
        kind("Deployment")["metadata"]["name"]
    );
}

#[test]
fn the_dockerfile_runs_grender_under_tini_as_a_numeric_user_with_a_healthcheck() {
    let docker = root("Dockerfile");
    assert!(docker.contains(r#"ENTRYPOINT ["tini", "--", "grender"]"#));
    assert!(docker.contains("USER 65532"));
    assert!(docker.contains(r#"CMD ["grender", "healthcheck"]"#));
    assert!(docker.contains("EXPOSE 8081"));
    for pkg in [
        "chromium-headless-shell",
        "fonts-noto-cjk",
        "fonts-noto-color-emoji",
        "tini",
        "ca-certificates",
    ] {
        assert!(docker.contains(pkg), "{pkg}");
    }
    assert!(docker.contains("LANG=en_US.UTF-8"));
    // Grafana's Helm chart gives the address as the Node service's HTTP_HOST/HTTP_PORT,
    // which grender reads only when SERVER_ADDR is not set: the image must not set it.
    assert!(
        !docker
            .lines()
            .any(|l| l.trim_start().starts_with("ENV") && l.contains("SERVER_ADDR")),
        "an ENV SERVER_ADDR in the image hides the Helm chart's HTTP_PORT"
    );
}

/// A validator from scripts/deps.sh, or None (with a notice) where it may be missing.
fn validator(name: &str, candidates: &[&str]) -> Option<PathBuf> {
    let found = candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        let required = ["REQUIRE_CHROMIUM", "CI"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0"));
        assert!(!required, "{name} is missing: run scripts/deps.sh");
        eprintln!("notice: {name} not installed (scripts/deps.sh installs it); check skipped");
    }
    found
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `old` replaced by `new` in `source`, which must contain it: a broken copy that is really broken.
fn broken(source: &str, old: &str, new: &str) -> String {
    assert!(
        source.contains(old),
        "the manifest no longer contains {old:?}"
    );
    source.replacen(old, new, 1)
}

#[test]
fn kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let Some(kv) = validator(
        "kubernetes-validate",
        &["/opt/grender-tools/bin/kubernetes-validate"],
    ) else {
        return;
    };
    let validate = |file: &Path| {
        run(Command::new(&kv)
            .args(["--strict", "--kubernetes-version", "1.37.0"])
            .arg(file))
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    manifests.sort();
    assert!(!manifests.is_empty(), "no manifests in {}", dir.display());
    for manifest in &manifests {
        let out = validate(manifest);
        assert!(
            out.status.success(),
            "{} is not valid Kubernetes:\n{}",
            manifest.display(),
            text(&out)
        );
    }
    // The validator really rejects what Kubernetes would: a port given as a string, and
    // (strict) a misspelt field.
    let good = root("deploy/kubernetes/grender.yaml");
    let tmp = tempfile::tempdir().expect("tempdir");
    for (old, new) in [
        ("containerPort: 8081", "containerPort: \"8081\""),
        ("periodSeconds: 10", "periodSecond: 10"),
    ] {
        let file = tmp.path().join("broken.yaml");
        std::fs::write(&file, broken(&good, old, new)).expect("write");
        let out = validate(&file);
        assert!(
            !out.status.success(),
            "kubernetes-validate accepted a manifest with {new:?}:\n{}",
            text(&out)
        );
    }
}

#[test]
fn the_compose_file_is_valid_for_docker_compose() {
    let Some(compose) = validator("docker-compose", &["/usr/bin/docker-compose"]) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = |file: &Path, token: Option<&str>| {
        let mut cmd = Command::new(&compose);
        cmd.arg("-f")
            .arg(file)
            .args(["config", "-q"])
            .current_dir(tmp.path())
            .env_remove("RENDER_TOKEN")
            .env_remove("SMTP_PASSWORD");
        if let Some(token) = token {
            cmd.env("RENDER_TOKEN", token);
        }
        run(&mut cmd)
    };
    let good = root("docker-compose.yml");
    let file = tmp.path().join("docker-compose.yml");
    std::fs::write(&file, &good).expect("write");
    let out = config(&file, Some("a-test-token"));
    assert!(
        out.status.success(),
        "docker-compose.yml is not valid:\n{}",
        text(&out)
    );
    // Without a shared token the file refuses to start anything.
    let out = config(&file, None);
    assert!(
        !out.status.success() && text(&out).contains("RENDER_TOKEN"),
        "docker-compose.yml runs without RENDER_TOKEN:\n{}",
        text(&out)
    );
    // The validator rejects what Compose would: a misspelt option, a port list as a number.
    for (old, new) in [
        ("mem_limit: 2g", "mem_limt: 2g"),
        ("retries: 3", "retries: three"),
    ] {
        std::fs::write(&file, broken(&good, old, new)).expect("write");
        let out = config(&file, Some("a-test-token"));
        assert!(
            !out.status.success(),
            "docker-compose accepted {new:?}:\n{}",
            text(&out)
        );
    }
}

/// `grender print-config` in an empty directory with only these variables and arguments:
/// option name → (value, source).
fn print_config(env: &[(&str, &str)], args: &[&str]) -> Vec<(String, String, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(Command::new(env!("CARGO_BIN_EXE_grender"))
        .arg("print-config")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path()));
    assert!(
        out.status.success(),
        "print-config {args:?} with {:?} failed: {}",
        env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            // --name = value (source)
            let (name, rest) = line.strip_prefix("--")?.split_once(" = ")?;
            let (value, source) = rest.rsplit_once(" (")?;
            Some((
                name.trim().to_string(),
                value.trim().to_string(),
                source.trim_end_matches(')').to_string(),
            ))
        })
        .collect()
}

fn option<'a>(options: &'a [(String, String, String)], name: &str) -> (&'a str, &'a str) {
    options
        .iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, v, s)| (v.as_str(), s.as_str()))
        .unwrap_or_else(|| panic!("print-config has no {name}"))
}

/// The Go service's (v5) names: the same flags, environment variables and config-file keys.
const GO_SETTINGS: &[(&str, &str, &str)] = &[
    // (option, env, value)
    ("log.level", "LOG_LEVEL", "debug"),
    ("log.format", "LOG_FORMAT", "json"),
    ("api.default-encoding", "API_DEFAULT_ENCODING", "pdf"),
    ("server.addr", "SERVER_ADDR", "127.0.0.1:9911"),
    (
        "server.certificate-file",
        "SERVER_CERTIFICATE_FILE",
        "/etc/grender/tls.crt",
    ),
    ("server.key-file", "SERVER_KEY_FILE", "/etc/grender/tls.key"),
    ("server.min-tls-version", "SERVER_MIN_TLS_VERSION", "1.3"),
    ("browser.path", "BROWSER_PATH", "/opt/chromium/chrome"),
    ("browser.flag", "BROWSER_FLAG", "--lang=de"),
    ("browser.sandbox", "BROWSER_SANDBOX", "false"),
    ("browser.timezone", "BROWSER_TIMEZONE", "Europe/Berlin"),
    ("browser.min-width", "BROWSER_MIN_WIDTH", "1200"),
    ("browser.min-height", "BROWSER_MIN_HEIGHT", "600"),
    ("browser.max-width", "BROWSER_MAX_WIDTH", "4000"),
    ("browser.max-height", "BROWSER_MAX_HEIGHT", "-1"),
    (
        "browser.page-scale-factor",
        "BROWSER_PAGE_SCALE_FACTOR",
        "2",
    ),
    (
        "browser.max-page-scale-factor",
        "BROWSER_MAX_PAGE_SCALE_FACTOR",
        "3",
    ),
    ("browser.portrait", "BROWSER_PORTRAIT", "true"),
    (
        "browser.override",
        "BROWSER_OVERRIDE",
        "^https://slow=--browser.readiness.timeout=60s",
    ),
    (
        "browser.readiness.timeout",
        "BROWSER_READINESS_TIMEOUT",
        "45s",
    ),
    (
        "browser.readiness.give-up-on-first-query",
        "BROWSER_READINESS_GIVE_UP_ON_FIRST_QUERY",
        "5s",
    ),
];

#[test]
fn official_setting_names_land_in_grenders_options() {
    // Go service, as flags.
    let flags: Vec<String> = GO_SETTINGS
        .iter()
        .map(|(name, _, value)| format!("--{name}={value}"))
        .chain(["--server.auth-token=one", "--server.auth-token=two"].map(String::from))
        .collect();
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let options = print_config(&[], &flag_refs);
    for (name, _, value) in GO_SETTINGS {
        assert_eq!(option(&options, name), (*value, "flag"), "--{name}");
    }
    assert_eq!(
        option(&options, "server.auth-token"),
        ("<2 secrets>", "flag")
    );

    // Go service, as environment variables.
    let env: Vec<(&str, &str)> = GO_SETTINGS
        .iter()
        .map(|(_, env, value)| (*env, *value))
        .chain([("AUTH_TOKEN", "one,two")])
        .collect();
    let options = print_config(&env, &[]);
    for (name, var, value) in GO_SETTINGS {
        assert_eq!(
            option(&options, name),
            (*value, format!("env {var}").as_str()),
            "{var}"
        );
    }
    assert_eq!(
        option(&options, "server.auth-token"),
        ("<2 secrets>", "env AUTH_TOKEN")
    );

    // Node service (v3/v4): the names grender maps, as Grafana's Helm chart and older
    // deployments set them.
    let options = print_config(
        &[
            ("HTTP_HOST", "0.0.0.0"),
            ("HTTP_PORT", "8089"),
            ("AUTH_TOKEN", "node-token"),
            ("LOG_LEVEL", "warn"),
            ("BROWSER_TZ", "Asia/Tokyo"),
            ("RENDERING_ARGS", "--lang=ja,--disable-gpu"),
            ("IGNORE_HTTPS_ERRORS", "true"),
            ("RENDERING_VIEWPORT_DEVICE_SCALE_FACTOR", "2"),
            ("RENDERING_VIEWPORT_MAX_WIDTH", "2500"),
            ("RENDERING_VIEWPORT_MAX_HEIGHT", "2600"),
            ("RENDERING_VIEWPORT_MAX_DEVICE_SCALE_FACTOR", "3"),
            ("RENDERING_CLUSTERING_MAX_CONCURRENCY", "7"),
            ("ENABLE_METRICS", "true"),
        ],
        &[],
    );
    let expect = [
        ("server.addr", "0.0.0.0:8089"),
        ("server.auth-token", "<1 secret>"),
        ("log.level", "warn"),
        ("browser.timezone", "Asia/Tokyo"),
        (
            "browser.flag",
            "--lang=ja --disable-gpu --ignore-certificate-errors",
        ),
        ("browser.page-scale-factor", "2"),
        ("browser.max-width", "2500"),
        ("browser.max-height", "2600"),
        ("browser.max-page-scale-factor", "3"),
        ("render.concurrency", "7"),
    ];
    for (name, value) in expect {
        let (got, source) = option(&options, name);
        assert_eq!(got, value, "{name}");
        assert!(source.starts_with("env "), "{name} came from {source}");
    }

    // A grender (Go) name set as well wins over the Node one.
    let options = print_config(
        &[
            ("HTTP_PORT", "8089"),
            ("SERVER_ADDR", "127.0.0.1:9000"),
            ("BROWSER_TZ", "Asia/Tokyo"),
            ("BROWSER_TIMEZONE", "Europe/Paris"),
        ],
        &[],
    );
    assert_eq!(option(&options, "server.addr").0, "127.0.0.1:9000");
    assert_eq!(option(&options, "browser.timezone").0, "Europe/Paris");
}

#[test]
fn the_go_services_config_file_keys_are_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = "server:\n  addr: \":9912\"\n  auth-token:\n    - a\n    - b\n\
                browser:\n  timezone: America/New_York\n  readiness:\n    timeout: 50s\n\
                log.level: error\n";
    std::fs::write(dir.path().join("config.yaml"), yaml).expect("write");
    let out = run(Command::new(env!("CARGO_BIN_EXE_grender"))
        .arg("print-config")
        .env_clear()
        .current_dir(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, value) in [
        ("server.addr", ":9912"),
        ("server.auth-token", "<2 secrets>"),
        ("browser.timezone", "America/New_York"),
        ("browser.readiness.timeout", "50s"),
        ("log.level", "error"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("--{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"));
        assert!(
            line.contains(value) && line.ends_with("(config file)"),
            "{line}"
        );
    }
}

#[test]
fn chrome_bin_of_the_node_service_names_the_browser() {
    // CHROME_BIN is resolved when the browser starts, so print-config cannot show it;
    // doctor's Chromium check reports the binary it was given.
    let out = run(Command::new(env!("CARGO_BIN_EXE_grender"))
        .arg("doctor")
        .env_clear()
        .env("CHROME_BIN", "/nonexistent/chrome-from-node")
        .current_dir(std::env::temp_dir()));
    let out = text(&out);
    assert!(
        out.contains("/nonexistent/chrome-from-node"),
        "doctor did not use CHROME_BIN: {out}"
    );
}
