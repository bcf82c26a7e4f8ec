//! CSV answers: the download name Grafana asked for and the `Content-Disposition` header. (The
//! download itself is caught by [`crate::page`].)

/// The download name for `Content-Disposition`: the last path segment (never a `/` or `\`),
/// ending in `.csv`; `None` when nothing usable is left.
pub fn file_name_from(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let base: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    if base.is_empty() || base == "." || base == ".." {
        return None;
    }
    if base.to_ascii_lowercase().ends_with(".csv") {
        Some(base)
    } else {
        Some(format!("{base}.csv"))
    }
}

/// `attachment; filename="…"` with an ASCII fallback, plus RFC 5987 `filename*` when the
/// name is not plain ASCII, so every client gets the name right.
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if ascii == name {
        return format!("attachment; filename=\"{name}\"");
    }
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_base_names_ending_in_csv() {
        assert_eq!(
            file_name_from("/tmp/../etc/passwd").as_deref(),
            Some("passwd.csv")
        );
        assert_eq!(
            file_name_from("C:\\x\\data.CSV").as_deref(),
            Some("data.CSV")
        );
        assert_eq!(
            file_name_from("Prometheus_ 1-data-2026.csv").as_deref(),
            Some("Prometheus_ 1-data-2026.csv")
        );
        assert_eq!(file_name_from("dir/"), None);
        assert_eq!(file_name_from(".."), None);
    }

    #[test]
    fn non_ascii_names_are_encoded() {
        assert_eq!(
            content_disposition("a b.csv"),
            "attachment; filename=\"a b.csv\""
        );
        let d = content_disposition("Données ✓.csv");
        assert!(d.contains("filename=\"Donn_es _.csv\""), "{d}");
        assert!(
            d.contains("filename*=UTF-8''Donn%C3%A9es%20%E2%9C%93.csv"),
            "{d}"
        );
    }
}
