//! The bytes Grafana asked for, as pure transforms testable without Chromium: the answer
//! formats ([`Output`], [`Encoding`]), smaller pictures ([`picture`]), stitching tall pages
//! ([`tiles`]), PDF paper and page counts ([`pdf`]), CSV names ([`csv`]). Capturing them from a
//! page is [`crate::page`]'s job.

pub mod csv;
pub mod pdf;
pub mod picture;
pub mod report_pdf;
pub mod tiles;

/// The `encoding` a request names: its answer's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Png,
    Jpeg,
    Webp,
    Pdf,
    Csv,
}

impl Encoding {
    /// Reads an `encoding` value (lower case); `jpg` is `jpeg`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "png" => Some(Encoding::Png),
            "jpeg" | "jpg" => Some(Encoding::Jpeg),
            "webp" => Some(Encoding::Webp),
            "pdf" => Some(Encoding::Pdf),
            "csv" => Some(Encoding::Csv),
            _ => None,
        }
    }

    /// The canonical name: the `encoding` label of the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Png => "png",
            Encoding::Jpeg => "jpeg",
            Encoding::Webp => "webp",
            Encoding::Pdf => "pdf",
            Encoding::Csv => "csv",
        }
    }

    /// The picture format, for the encodings that are pictures.
    pub fn picture_format(self) -> Option<picture::PictureFormat> {
        match self {
            Encoding::Png => Some(picture::PictureFormat::Png),
            Encoding::Jpeg => Some(picture::PictureFormat::Jpeg),
            Encoding::Webp => Some(picture::PictureFormat::Webp),
            Encoding::Pdf | Encoding::Csv => None,
        }
    }
}

/// The format of a `/render` answer, with everything that makes two answers of the same page
/// differ (it is part of the key under which identical requests share one render).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Output {
    /// Chromium's PNG as is: what Grafana expects.
    Png,
    /// An opt-in smaller picture: JPEG, WebP, optimised, palette, thumbnail, greyscale.
    Picture(picture::PictureOptions),
    Pdf(pdf::PdfOptions),
    /// The file Grafana's `d-csv` page downloads; `file_name` overrides its name.
    Csv {
        file_name: Option<String>,
    },
}

impl Output {
    /// The HTTP Content-Type of this output.
    pub fn content_type(&self) -> &'static str {
        match self {
            Output::Png => "image/png",
            Output::Picture(p) => p.format.content_type(),
            Output::Pdf(_) => "application/pdf",
            Output::Csv { .. } => "text/csv",
        }
    }

    /// The encoding of this output.
    pub fn encoding(&self) -> Encoding {
        match self {
            Output::Png => Encoding::Png,
            Output::Picture(p) => match p.format {
                picture::PictureFormat::Png => Encoding::Png,
                picture::PictureFormat::Jpeg => Encoding::Jpeg,
                picture::PictureFormat::Webp => Encoding::Webp,
            },
            Output::Pdf(_) => Encoding::Pdf,
            Output::Csv { .. } => Encoding::Csv,
        }
    }
}
