//! Switchboard's browser assets: the embeddable chat widget and the demo page of the
//! fictional operator Kestrel Mobile ([`widget`]).
//!
//! - [`widget::widget_js`]: `widget.js`, plain JavaScript with no framework and no build step;
//!   its stylesheet (`widget.css`) is inlined at first use so one request brings everything,
//!   and the widget renders into a shadow root so host pages' styles and its own never meet.
//! - [`widget::DemoPage`]: the askama template served at `GET /`.
//! - [`console`]: the agent-assist console's pages (askama, `templates/console/`) and its
//!   plain script and stylesheet (`console.js`, `console.css`).
//!
//! This crate knows no HTTP: the server decides routes, headers and caching.

pub mod console;
pub mod widget;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rendering the {template} template: {source}")]
    Render { template: &'static str, source: askama::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
