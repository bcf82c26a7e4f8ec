//! `browser.override`: per-URL request settings, as in the official Go service
//! (`regex=--browser.min-width=500 --browser.min-height=500`). The first pattern that
//! matches the target URL wins; it changes only the settings it names. Every override is
//! resolved against the server's [`RequestDefaults`] once, at start-up.

use clap::{Args, FromArgMatches};

use super::{ConfigError, RequestDefaults};

/// One `browser.override` entry, resolved.
#[derive(Debug, Clone)]
pub struct UrlOverride {
    pattern: regex::Regex,
    /// The server's defaults with this override's settings applied.
    pub defaults: RequestDefaults,
}

/// The request defaults and the per-URL overrides of them.
#[derive(Debug, Clone, Default)]
pub struct RequestDefaultsByUrl {
    pub base: RequestDefaults,
    pub overrides: Vec<UrlOverride>,
}

impl RequestDefaultsByUrl {
    /// Resolves every `browser.override` value against `base`; a bad one is a start-up error
    /// naming it.
    pub fn resolve(base: &RequestDefaults, values: &[String]) -> Result<Self, ConfigError> {
        Ok(RequestDefaultsByUrl {
            base: base.clone(),
            overrides: values
                .iter()
                .map(|v| parse(v, base))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The defaults for `url`: those of the first override whose pattern matches, else the base.
    pub fn for_url(&self, url: &str) -> &RequestDefaults {
        self.overrides
            .iter()
            .find(|o| o.pattern.is_match(url))
            .map_or(&self.base, |o| &o.defaults)
    }
}

fn parse(value: &str, base: &RequestDefaults) -> Result<UrlOverride, ConfigError> {
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
    // The request settings' own definitions, without defaults or environment: what is not
    // named keeps the base value.
    let cmd = RequestDefaults::augment_args(clap::Command::new("browser.override"))
        .mut_args(|a| a.env(None::<&str>).default_value(None::<&str>));
    let settable: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    let argv = std::iter::once("browser.override").chain(flags.split_whitespace());
    let matches = cmd.try_get_matches_from(argv).map_err(|e| {
        if e.kind() == clap::error::ErrorKind::UnknownArgument {
            bad(format!(
                "only these request settings can be set per URL: {}",
                settable.join(", ")
            ))
        } else {
            bad(e
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid flags")
                .trim_start_matches("error: ")
                .to_string())
        }
    })?;
    let mut defaults = base.clone();
    defaults
        .update_from_arg_matches(&matches)
        .map_err(|e| bad(e.to_string()))?;
    Ok(UrlOverride { pattern, defaults })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn resolve(values: &[&str]) -> Result<RequestDefaultsByUrl, ConfigError> {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        RequestDefaultsByUrl::resolve(&RequestDefaults::default(), &values)
    }

    #[test]
    fn overrides_change_only_what_they_name() {
        let by_url =
            resolve(&["very-long-.*=--browser.min-width=500 --browser.min-height=500"]).unwrap();
        let o = by_url.for_url("http://g/d/very-long-1");
        assert_eq!((o.min_width, o.min_height), (500, 500));
        assert_eq!(o.max_width, RequestDefaults::default().max_width);
        let all = resolve(&["a=--browser.portrait", "b=--browser.readiness.timeout=5s"]).unwrap();
        assert!(all.for_url("http://x/d/a").portrait);
        assert_eq!(
            all.for_url("http://x/d/b").readiness_timeout,
            Duration::from_secs(5)
        );
        assert_eq!(all.for_url("http://x/d/c"), &RequestDefaults::default());
    }

    #[test]
    fn bad_overrides_are_refused_with_their_text() {
        for bad in [
            "no-flags",
            "(=--browser.min-width=1",
            "x=--browser.min-width=wide",
        ] {
            let err = resolve(&[bad]).unwrap_err().to_string();
            assert!(err.contains("browser.override"), "{bad}: {err}");
        }
        let err = resolve(&["x=--server.addr=:1"]).unwrap_err().to_string();
        assert!(
            err.contains("only these request settings") && err.contains("--browser.min-width"),
            "{err}"
        );
    }
}
