//! The documentation agrees with the code: every option in the configuration reference,
//! every error code in the troubleshooting page.
//!
//! `GRENDER_WRITE_DOCS=1 cargo test --test grender docs::` regenerates docs/configuration.md.

use clap::CommandFactory;

fn path(p: &str) -> String {
    format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))
}

/// The configuration reference, generated from the command line definition.
fn configuration_reference() -> String {
    let cmd = grender::cli::Cli::command();
    let server = cmd.find_subcommand("server").expect("server");
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the code (`GRENDER_WRITE_DOCS=1 cargo test --test grender docs::`); a test fails when it is stale.\n\n\
         Precedence: command-line flag, then environment variable, then `config.yaml` / `config.yml` / \
         `config.json` in the working directory (or `--config FILE`), whose keys are the flag names, dotted \
         or nested. `grender print-config` shows the effective values and where each came from. The Node \
         service's environment names are accepted too (see the README).\n\n\
         | Flag | Environment | Default | Meaning |\n|---|---|---|---|\n",
    );
    for arg in server.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().to_string())
            .collect();
        let default = if default.is_empty() {
            "—".to_string()
        } else {
            format!("`{}`", default.join(","))
        };
        let help = arg
            .get_help()
            .map(|h| h.to_string())
            .unwrap_or_default()
            .replace('|', "\\|");
        out.push_str(&format!("| `--{long}` | {env} | {default} | {help} |\n"));
    }
    out
}

#[test]
fn the_configuration_reference_is_current() {
    let expected = configuration_reference();
    let file = path("docs/configuration.md");
    if std::env::var("GRENDER_WRITE_DOCS").is_ok() {
        std::fs::write(&file, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/configuration.md is stale: run GRENDER_WRITE_DOCS=1 cargo test --test grender docs::"
    );
}

#[test]
fn every_error_code_has_a_troubleshooting_entry() {
    let page = std::fs::read_to_string(path("docs/troubleshooting.md")).unwrap();
    for code in grender::error::ErrorCode::ALL {
        assert!(
            page.contains(&format!("### `{code}`")),
            "docs/troubleshooting.md has no entry for {code}"
        );
    }
}
