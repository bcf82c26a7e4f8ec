//! Turning a ready page into the bytes Grafana asked for: a PNG screenshot or a PDF.

pub mod csv;
pub mod pdf;

use base64::Engine;
use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams,
};

use crate::error::RenderError;

/// The format of a `/render` answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Png,
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
            Output::Pdf(_) => "application/pdf",
            Output::Csv { .. } => "text/csv",
        }
    }

    /// Everything that makes two outputs of the same page differ, for coalescing.
    pub fn key(&self) -> String {
        format!("{self:?}")
    }
}

/// Captures the page's viewport (already sized to the picture) as a PNG.
pub async fn png(page: &Page) -> Result<bytes::Bytes, RenderError> {
    let params = CaptureScreenshotParams::builder()
        .format(CaptureScreenshotFormat::Png)
        .from_surface(true)
        .capture_beyond_viewport(false)
        .build();
    let shot = page
        .execute(params)
        .await
        .map_err(|e| RenderError::cdp("capturing the picture", e))?;
    decode(shot.result.data.as_ref(), "decoding the picture")
}

/// Decodes a base64 CDP payload.
pub fn decode(data: &str, stage: &'static str) -> Result<bytes::Bytes, RenderError> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map(Into::into)
        .map_err(|e| RenderError::cdp(stage, e))
}
