//! The packaging files agree with the code: ports, env names, probe paths, the entrypoint.

use std::collections::HashSet;

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
    assert!(container["resources"]["limits"]["memory"].is_string());
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
}
