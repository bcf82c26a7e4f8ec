//! `browser.override`: per-URL request settings, as in the official Go service
//! (`regex=--browser.min-width=500 --browser.min-height=500`). The first pattern that
//! matches the target URL wins; it changes only the request knobs it names.

use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use crate::config::{Cli, Command, ConfigError, ServerOptions};

/// Request knobs an override may set; `None` keeps the server's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Knobs {
    pub min_width: Option<i64>,
    pub min_height: Option<i64>,
    pub max_width: Option<i64>,
    pub max_height: Option<i64>,
    pub page_scale_factor: Option<f64>,
    pub max_page_scale_factor: Option<f64>,
    pub portrait: Option<bool>,
    pub readiness_timeout: Option<Duration>,
    pub give_up_on_first_query: Option<Duration>,
}

/// One `browser.override` entry.
#[derive(Debug, Clone)]
pub struct Override {
    pattern: regex::Regex,
    pub knobs: Knobs,
}

/// The first override whose pattern matches `url`.
pub fn matching<'a>(overrides: &'a [Override], url: &str) -> Option<&'a Override> {
    overrides.iter().find(|o| o.pattern.is_match(url))
}

/// Parses every `browser.override` value; a bad one is a start-up error naming it.
pub fn parse_all(values: &[String]) -> Result<Vec<Override>, ConfigError> {
    values.iter().map(|v| parse(v)).collect()
}

fn parse(value: &str) -> Result<Override, ConfigError> {
    let bad = |why: String| ConfigError(format!("browser.override {value:?}: {why}"));
    let split = value
        .find("=--")
        .ok_or_else(|| bad("expected REGEX=--flag=value ...".into()))?;
    let (pattern, flags) = (&value[..split], &value[split + 1..]);
    let pattern = regex::Regex::new(pattern).map_err(|e| {
        bad(format!(
            "bad pattern: {}",
            e.to_string().lines().last().unwrap_or("").trim()
        ))
    })?;
    let mut argv = vec![
        "grender".to_string(),
        "server".into(),
        "--config=/dev/null".into(),
    ];
    argv.extend(flags.split_whitespace().map(String::from));
    let matches = Cli::command().try_get_matches_from(&argv).map_err(|e| {
        bad(e
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid flags")
            .trim_start_matches("error: ")
            .to_string())
    })?;
    let Some(("server", sub)) = matches.subcommand() else {
        return Err(bad("invalid flags".into()));
    };
    let given = |id: &str| sub.value_source(id) == Some(ValueSource::CommandLine);
    let Command::Server(opts) = Cli::from_arg_matches(&matches)
        .map_err(|e| bad(e.to_string()))?
        .command
    else {
        return Err(bad("invalid flags".into()));
    };
    let opts: ServerOptions = *opts;
    let knob = |id: &str| given(id);
    let allowed = [
        "min_width",
        "min_height",
        "max_width",
        "max_height",
        "page_scale_factor",
        "max_page_scale_factor",
        "portrait",
        "readiness_timeout",
        "give_up_on_first_query",
    ];
    let cmd = Cli::command();
    let server = cmd
        .find_subcommand("server")
        .ok_or_else(|| bad("no server command".into()))?;
    let arg_ids: Vec<String> = server
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    if let Some(other) = arg_ids
        .iter()
        .find(|id| given(id) && !allowed.contains(&id.as_str()) && *id != "config_file")
    {
        return Err(bad(format!(
            "'{other}' cannot be overridden per URL (only browser.* request settings)"
        )));
    }
    Ok(Override {
        pattern,
        knobs: Knobs {
            min_width: knob("min_width").then_some(opts.min_width),
            min_height: knob("min_height").then_some(opts.min_height),
            max_width: knob("max_width").then_some(opts.max_width),
            max_height: knob("max_height").then_some(opts.max_height),
            page_scale_factor: knob("page_scale_factor").then_some(opts.page_scale_factor),
            max_page_scale_factor: knob("max_page_scale_factor")
                .then_some(opts.max_page_scale_factor),
            portrait: knob("portrait").then_some(opts.portrait),
            readiness_timeout: knob("readiness_timeout").then_some(opts.readiness_timeout),
            give_up_on_first_query: knob("give_up_on_first_query")
                .then_some(opts.give_up_on_first_query),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_name_only_what_they_set() {
        let o = parse("very-long-.*=--browser.min-width=500 --browser.min-height=500").unwrap();
        assert_eq!(o.knobs.min_width, Some(500));
        assert_eq!(o.knobs.min_height, Some(500));
        assert_eq!(o.knobs.max_width, None);
        let all = parse_all(&[
            "a=--browser.portrait".into(),
            "b=--browser.readiness.timeout=5s".into(),
        ])
        .unwrap();
        assert_eq!(
            matching(&all, "http://x/d/b")
                .unwrap()
                .knobs
                .readiness_timeout,
            Some(Duration::from_secs(5))
        );
        assert!(matching(&all, "http://x/d/c").is_none());
    }

    #[test]
    fn bad_overrides_are_refused_with_their_text() {
        for bad in [
            "no-flags",
            "(=--browser.min-width=1",
            "x=--browser.min-width=wide",
            "x=--server.addr=:1",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("browser.override"), "{bad}: {err}");
        }
    }
}
