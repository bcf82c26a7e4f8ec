//! Layering the config file under flags and environment variables.
//!
//! Sources, highest precedence first: command-line flag, environment variable, then
//! `config.yaml` / `config.yml` / `config.json` in the working directory (or the file named by
//! `--config`). Keys in the file are the flag names, either dotted (`server.addr: ":8081"`) or
//! nested (`server: {addr: ...}`).
//!
//! The file is layered in by re-parsing: after a first parse we know which options the user
//! gave on the command line or in the environment; every other option found in the file is
//! appended as `--name=value` and the arguments are parsed again. Clap then does all type
//! checking in one place.

use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;

/// Where an option's value came from, for `print-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionSource {
    /// The flag name, e.g. `server.addr`.
    pub name: String,
    /// The raw value(s), comma-joined.
    pub value: String,
    /// flag, env NAME, config file, or default.
    pub source: String,
}

/// Parses `argv` with `cmd` (a command with subcommands whose options may come from the
/// file), layering the config file of the chosen subcommand under its flags and env vars, and
/// saying where every option of that subcommand came from.
pub fn parse_layered(
    cmd: clap::Command,
    argv: Vec<std::ffi::OsString>,
) -> Result<(ArgMatches, Vec<OptionSource>), clap::Error> {
    let first = cmd.clone().try_get_matches_from(&argv)?;
    let Some((name, sub)) = first.subcommand() else {
        return Ok((first, Vec::new()));
    };
    let Some(sub_cmd) = cmd.find_subcommand(name).cloned() else {
        return Ok((first, Vec::new()));
    };
    if !sub_cmd.get_arguments().any(|a| a.get_id() == "config_file") {
        return Ok((first, Vec::new()));
    }
    let explicit = sub
        .try_get_one::<PathBuf>("config_file")
        .ok()
        .flatten()
        .cloned();
    let file = load_config_file(explicit.as_deref())
        .map_err(|msg| cmd.clone().error(clap::error::ErrorKind::Io, msg))?;
    let mut extra = Vec::new();
    let mut from_file = std::collections::HashSet::new();
    for (key, values) in file {
        let Some(arg) = sub_cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            return Err(cmd.clone().error(
                clap::error::ErrorKind::UnknownArgument,
                format!("unknown option '{key}' in the config file"),
            ));
        };
        let given = matches!(
            sub.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if !given {
            from_file.insert(arg.get_id().to_string());
            extra.extend(
                values
                    .into_iter()
                    .map(|v| std::ffi::OsString::from(format!("--{key}={v}"))),
            );
        }
    }
    let mut full = argv;
    full.extend(extra);
    let second = cmd.try_get_matches_from(full)?;
    let mut sources = Vec::new();
    if let Some((_, sub)) = second.subcommand() {
        for arg in sub_cmd.get_arguments() {
            let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
                continue;
            };
            let value = sub
                .get_raw(id)
                .map(|vals| {
                    vals.map(|v| v.to_string_lossy().to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let source = match sub.value_source(id) {
                _ if from_file.contains(id) => "config file".to_string(),
                Some(ValueSource::CommandLine) => "flag".to_string(),
                Some(ValueSource::EnvVariable) => format!(
                    "env {}",
                    arg.get_env()
                        .map(|e| e.to_string_lossy().to_string())
                        .unwrap_or_default()
                ),
                Some(ValueSource::DefaultValue) => "default".to_string(),
                _ => "unset".to_string(),
            };
            sources.push(OptionSource {
                name: long.to_string(),
                value,
                source,
            });
        }
    }
    Ok((second, sources))
}

/// Reads the config file into `dotted.key → values`; an absent default file is empty.
fn load_config_file(explicit: Option<&Path>) -> Result<Vec<(String, Vec<String>)>, String> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match ["config.yaml", "config.yml", "config.json"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
        {
            Some(p) => p,
            None => return Ok(Vec::new()),
        },
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    // JSON is YAML, so one parser serves both, as in the Go service.
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| format!("config file {} is not valid YAML/JSON: {e}", path.display()))?;
    let mut out = Vec::new();
    flatten("", &value, &mut out).map_err(|e| format!("config file {}: {e}", path.display()))?;
    Ok(out)
}

fn flatten(
    prefix: &str,
    value: &serde_yaml_ng::Value,
    out: &mut Vec<(String, Vec<String>)>,
) -> Result<(), String> {
    use serde_yaml_ng::Value;
    let scalar = |v: &Value| -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(format!(
                "'{prefix}' must be a string, number, boolean or list of them"
            )),
        }
    };
    match value {
        Value::Null if prefix.is_empty() => Ok(()),
        Value::Mapping(map) => {
            for (k, v) in map {
                let k = k.as_str().ok_or("keys must be strings")?;
                let key = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out)?;
            }
            Ok(())
        }
        Value::Sequence(items) => {
            out.push((
                prefix.to_string(),
                items.iter().map(scalar).collect::<Result<_, _>>()?,
            ));
            Ok(())
        }
        other => {
            out.push((prefix.to_string(), vec![scalar(other)?]));
            Ok(())
        }
    }
}
