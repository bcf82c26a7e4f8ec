//! Subject and message templates: `{{name}}` placeholders, checked when the file is read so
//! a typo is an error at start-up rather than a literal `{{titel}}` in an e-mail.

/// The placeholders a template may use.
pub(crate) const NAMES: [&str; 6] = ["title", "range", "from", "to", "name", "dashboard"];

/// The values of one run, by placeholder name.
pub(crate) type Values<'a> = [(&'static str, &'a str); 6];

/// Checks that every `{{…}}` in `template` is a known placeholder and closed.
pub(crate) fn check(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("{template:?}: a '{{{{' is never closed"))?;
        let name = after[..end].trim();
        if !NAMES.contains(&name) {
            return Err(format!(
                "{template:?}: unknown placeholder {{{{{name}}}}} (use {})",
                NAMES.map(|n| format!("{{{{{n}}}}}")).join(", ")
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// Fills in a checked `template`.
pub(crate) fn fill(template: &str, values: &Values<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_refused() {
        let values: Values = [
            ("title", "Ops 運用"),
            ("range", "last week"),
            ("from", "a"),
            ("to", "b"),
            ("name", "weekly"),
            ("dashboard", "http://g/d/x"),
        ];
        let t = "{{title}} – {{ range }} ({{name}})";
        assert!(check(t).is_ok());
        assert_eq!(fill(t, &values), "Ops 運用 – last week (weekly)");
        let err = check("{{titel}}").expect_err("unknown");
        assert!(err.contains("unknown placeholder {{titel}}"), "{err}");
        assert!(check("{{title").is_err());
        assert_eq!(fill("no placeholders", &values), "no placeholders");
    }
}
