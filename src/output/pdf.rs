//! PDF options: Grafana's paper formats, orientation, background and page ranges (printed
//! with zero margins at scale 1 / deviceScaleFactor, as the official service does), and the
//! page count of a printed PDF.

/// Paper sizes in inches, as the official Go service gives them to Chrome (they
/// differ from puppeteer's to match what Chrome really outputs).
const PAPERS: [(&str, f64, f64); 11] = [
    ("letter", 8.5, 11.0),
    ("legal", 8.5, 14.0),
    ("tabloid", 11.0, 17.0),
    ("ledger", 17.0, 11.0),
    ("a0", 33.1102, 46.80),
    ("a1", 23.39, 33.1102),
    ("a2", 16.5354, 23.39),
    ("a3", 11.70, 16.5354),
    ("a4", 8.2677, 11.70),
    ("a5", 5.8268, 8.2677),
    ("a6", 4.1339, 5.8268),
];

/// How to print.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PdfOptions {
    /// Lower-case paper name, one of [`paper_names`].
    pub format: String,
    pub landscape: bool,
    pub print_background: bool,
    /// Chromium's syntax, e.g. `1-3, 5`; `None` prints every page.
    pub page_ranges: Option<String>,
    /// render.max-pdf-pages: a PDF with more pages is refused (413).
    pub max_pages: u32,
    /// A scheduled report's pages (panels kept whole, header and footer); Grafana's own PDF
    /// requests print the page as it is.
    pub report: Option<super::report_pdf::ReportLayout>,
}

/// The accepted `pdf.format` values.
pub fn paper_names() -> impl Iterator<Item = &'static str> {
    PAPERS.iter().map(|p| p.0)
}

/// Width and height in inches of a (lower-case) paper name.
pub fn paper_size(name: &str) -> Option<(f64, f64)> {
    PAPERS.iter().find(|p| p.0 == name).map(|p| (p.1, p.2))
}

/// Chromium accepts print scales from 0.1 to 2.
pub fn print_scale(device_scale: f64) -> Result<f64, String> {
    let scale = 1.0 / device_scale;
    if !(0.1..=2.0).contains(&scale) {
        return Err(format!(
            "invalid 'deviceScaleFactor' for a PDF: {device_scale} gives a print scale of {scale:.3}, \
             outside Chromium's 0.1–2 (use a deviceScaleFactor from 0.5 to 10)"
        ));
    }
    Ok(scale)
}

/// The number of pages of a PDF as Chromium (Skia) writes it: the largest `/Count` of its page
/// tree, which is the root's; else the number of `/Type /Page` objects. Cheap: one scan of the
/// bytes, no parsing of the content streams (which Skia compresses, unlike its object dictionaries).
pub fn page_count(pdf: &[u8]) -> usize {
    let count = find_all(pdf, b"/Count ")
        .filter_map(|at| {
            let digits: Vec<u8> = pdf[at..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect();
            std::str::from_utf8(&digits).ok()?.parse::<usize>().ok()
        })
        .max();
    count.unwrap_or_else(|| {
        find_all(pdf, b"/Type /Page")
            .filter(|&at| pdf.get(at) != Some(&b's'))
            .count()
    })
}

/// The offsets just after every occurrence of `needle` in `haystack`.
fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| *w == needle)
        .map(move |(i, _)| i + needle.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn papers_and_scales() {
        assert_eq!(paper_size("a4"), Some((8.2677, 11.70)));
        assert_eq!(paper_size("ledger"), Some((17.0, 11.0)));
        assert_eq!(paper_names().count(), 11);
        assert!(paper_size("A4").is_none(), "callers lower-case first");
        assert_eq!(print_scale(2.0).unwrap(), 0.5);
        assert!(print_scale(0.25).is_err());
        assert!(print_scale(20.0).is_err());
    }

    #[test]
    fn pages_are_counted_from_the_page_tree() {
        let tree = b"%PDF-1.4\n1 0 obj\n<</Type /Pages\n/Count 12\n/Kids [2 0 R 3 0 R]>>\nendobj\n\
                     2 0 obj\n<</Type /Pages\n/Count 7>>\nendobj\n3 0 obj\n<</Type /Page>>\nendobj\n";
        assert_eq!(page_count(tree), 12);
        let flat = b"<</Type /Pages /Kids []>> <</Type /Page /Parent 1 0 R>> <</Type /Page>>";
        assert_eq!(page_count(flat), 2);
        assert_eq!(page_count(b"not a pdf"), 0);
    }
}
