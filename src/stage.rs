//! The stages of a render: what a deadline error says the time went to, and the step labels
//! of the step-duration metric.

/// A step of a render: what a deadline error says the time went to, and the Node service's
/// step label under which its duration is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    WaitingForSlot,
    WaitingForIdenticalRender,
    WaitingForChromium,
    StartingChromium,
    OpeningTab,
    LoadingPage,
    WaitingForCsv,
    WaitingForPanels,
    Capturing,
    Converting,
    /// `grender doctor`'s probe of Grafana.
    ProbingGrafana,
}

impl Stage {
    /// What the render was doing, as a deadline error says it ("… while {stage}").
    pub fn describe(self) -> &'static str {
        match self {
            Stage::WaitingForSlot => "waiting for a render slot",
            Stage::WaitingForIdenticalRender => "waiting for an identical render in progress",
            Stage::WaitingForChromium => "waiting for Chromium",
            Stage::StartingChromium => "waiting for Chromium to start",
            Stage::OpeningTab => "opening a browser tab",
            Stage::LoadingPage => "loading the page",
            Stage::WaitingForCsv => "waiting for the CSV download",
            Stage::WaitingForPanels => "waiting for panels to render",
            Stage::Capturing => "capturing the picture",
            Stage::Converting => "converting the picture",
            Stage::ProbingGrafana => "loading Grafana's health check",
        }
    }

    /// The Node service's `step` label of `grafana_image_renderer_step_duration_seconds`.
    pub fn step_label(self) -> &'static str {
        match self {
            Stage::WaitingForSlot => "queue",
            Stage::WaitingForChromium | Stage::StartingChromium => "launch",
            Stage::OpeningTab => "newPage",
            Stage::LoadingPage => "navigate",
            Stage::WaitingForCsv => "downloadCSV",
            Stage::WaitingForPanels => "panelsRendered",
            Stage::Capturing => "screenshot",
            Stage::Converting => "convert",
            Stage::WaitingForIdenticalRender | Stage::ProbingGrafana => "other",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}
