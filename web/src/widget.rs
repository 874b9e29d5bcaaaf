//! The embeddable chat widget (`assets/widget.js`, `assets/widget.css`) and the demo page
//! (`templates/demo.html`).

use std::sync::OnceLock;

use askama::Template;

use crate::{Error, Result};

/// The widget's script as written, with a placeholder for its stylesheet.
pub const WIDGET_JS_SOURCE: &str = include_str!("../assets/widget.js");
/// The widget's stylesheet (applied inside its shadow root).
pub const WIDGET_CSS: &str = include_str!("../assets/widget.css");
/// Where the stylesheet goes in the script: a JavaScript string literal.
const CSS_PLACEHOLDER: &str = "\"__SWITCHBOARD_WIDGET_CSS__\"";

/// `widget.js` with its stylesheet inlined.
pub fn widget_js() -> &'static str {
    static SCRIPT: OnceLock<String> = OnceLock::new();
    SCRIPT.get_or_init(|| WIDGET_JS_SOURCE.replacen(CSS_PLACEHOLDER, &js_string_literal(WIDGET_CSS), 1))
}

/// A JavaScript string literal of `text`, safe inside a `<script>` element too.
pub fn js_string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One plan on the demo page.
#[derive(Debug, Clone)]
pub struct PlanCard {
    pub name: String,
    /// `$65.00`
    pub price: String,
    /// `15 GB` or `unlimited data`
    pub allowance: String,
    /// `$2.00 per GB`
    pub refuel: String,
}

/// The demo page of the fictional operator, with the widget on it.
#[derive(Debug, Template)]
#[template(path = "demo.html")]
pub struct DemoPage {
    pub operator_name: String,
    /// Where the page loads the widget from.
    pub widget_src: String,
    pub widget_title: String,
    pub widget_color: String,
    /// The one tag an operator pastes into their pages.
    pub snippet: String,
    pub plans: Vec<PlanCard>,
}

impl DemoPage {
    pub fn render_html(&self) -> Result<String> {
        self.render().map_err(|source| Error::Render { template: "demo.html", source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stylesheet_is_inlined_once() {
        let script = widget_js();
        assert!(!script.contains("__SWITCHBOARD_WIDGET_CSS__"));
        assert!(script.contains(":host"), "the stylesheet should be in the script");
        assert!(!script.contains("</style"), "nothing in the script may close an element");
    }

    #[test]
    fn string_literals_escape_what_matters() {
        assert_eq!(js_string_literal("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(js_string_literal("</script>"), "\"\\u003c/script\\u003e\"");
        assert_eq!(js_string_literal("\u{2028}\u{1}"), "\"\\u2028\\u0001\"");
    }

    #[test]
    fn the_demo_page_escapes_its_data_and_loads_the_widget() {
        let page = DemoPage {
            operator_name: "Kestrel Mobile".into(),
            widget_src: "/widget.js".into(),
            widget_title: "Kestrel <help>".into(),
            widget_color: "#0b6e4f".into(),
            snippet: "<script src=\"https://host/widget.js\"></script>".into(),
            plans: vec![PlanCard {
                name: "Premium Plan".into(),
                price: "$65.00".into(),
                allowance: "15 GB".into(),
                refuel: "$2.00 per GB".into(),
            }],
        };
        let html = page.render_html().unwrap();
        assert!(html.contains("<script src=\"/widget.js\""), "{html}");
        assert!(html.contains("Kestrel &#60;help&#62;") || html.contains("Kestrel &lt;help&gt;"), "{html}");
        assert!(html.contains("&lt;script src=") || html.contains("&#60;script src="), "the snippet is shown, not run");
        assert!(html.contains("Premium Plan"));
    }
}

/// One text message on the demo's outbox page.
#[derive(Debug, Clone)]
pub struct SmsRow {
    pub to: String,
    pub text: String,
    /// `2026-12-07 16:05:12 UTC`
    pub at: String,
}

/// The demo's outbox: the text messages the operator's SMS gateway would have sent.
#[derive(Debug, Template)]
#[template(path = "demo_sms.html")]
pub struct DemoSmsPage {
    pub operator_name: String,
    /// Newest first.
    pub texts: Vec<SmsRow>,
}

impl DemoSmsPage {
    pub fn render_html(&self) -> Result<String> {
        self.render().map_err(|source| Error::Render { template: "demo_sms.html", source })
    }
}
