//! The agent-assist console's pages (`templates/console/*.html`) and assets
//! (`assets/console.js`, `assets/console.css`).
//!
//! The page types hold plain, already formatted rows; the server builds them. Everything is
//! rendered through askama's HTML escaping, so text a customer wrote can never become markup;
//! the script adds live rows with `textContent` only. The rows also serialise to JSON for the
//! console's live updates.

use askama::Template;
use serde::Serialize;

use crate::{Error, Result};

/// The console's script (plain JavaScript, no build step).
pub const CONSOLE_JS: &str = include_str!("../assets/console.js");
/// The console's stylesheet.
pub const CONSOLE_CSS: &str = include_str!("../assets/console.css");

/// The signed-in agent and the navigation bar.
#[derive(Debug, Clone, Serialize)]
pub struct Nav {
    pub operator_name: String,
    pub agent: String,
    /// `agent` or `supervisor`.
    pub role: String,
    pub is_supervisor: bool,
    /// The session's CSRF token: in every form and in the `X-CSRF-Token` header of calls.
    pub csrf_token: String,
    /// Which entry of the bar is the current page (`queue`, `dashboard`, `reports`, `canned`).
    pub active: String,
}

/// One conversation in the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueRow {
    pub id: String,
    pub href: String,
    pub channel: String,
    /// Masked: `Tomás H. · C2004`, `WhatsApp ••• 2005`, `Visitor`.
    pub customer: String,
    pub intent: String,
    pub status: String,
    pub status_label: String,
    /// RFC 3339, empty when not waiting (the script keeps `waiting` current from it).
    pub waiting_since: String,
    /// `12 min`, empty when not waiting.
    pub waiting: String,
    /// One line.
    pub summary: String,
    pub assignee: String,
    /// The agent who took it over, if any.
    pub holder: String,
    /// The assistant failed to understand the customer repeatedly.
    pub flagged: bool,
    /// `2025-01-31 14:05 UTC` when snoozed.
    pub snoozed_until: String,
    /// `14:05`
    pub updated: String,
}

/// The queue: waiting for a human first, then the other active conversations, then snoozed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueView {
    pub waiting: Vec<QueueRow>,
    pub active: Vec<QueueRow>,
    pub snoozed: Vec<QueueRow>,
}

/// Today's numbers (or a period's).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LiveNumbers {
    pub conversations: usize,
    /// Resolved without a human.
    pub contained: usize,
    /// `72%` (or `–`).
    pub containment: String,
    pub transferred: usize,
    /// `1 min 20 s` (or `–`).
    pub first_response: String,
    /// `4.5 / 5 (12 ratings)` (or `–`).
    pub csat: String,
    pub waiting_now: usize,
    pub with_agents_now: usize,
}

/// One day of the reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayRow {
    pub date: String,
    pub conversations: usize,
    pub contained: usize,
    pub containment: String,
    /// 0..=1, for the bar.
    pub containment_fraction: f64,
    pub transferred: usize,
    pub first_response: String,
    pub csat: String,
}

/// An intent and how many conversations raised it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentRow {
    pub intent: String,
    pub count: usize,
    /// Of the most frequent one, 0..=1, for the bar.
    pub fraction: f64,
}

/// What one agent holds right now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentLoad {
    pub agent: String,
    pub role: String,
    pub holding: usize,
    pub assigned: usize,
}

/// One entry of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TranscriptItem {
    pub seq: u64,
    /// RFC 3339.
    pub at: String,
    /// `14:05`
    pub time: String,
    /// `customer`, `assistant`, `agent`, `note` (private), `action`, or `system`.
    pub kind: String,
    /// Who: `Customer`, `Assistant`, the agent's name, or empty.
    pub author: String,
    pub text: String,
    /// Citations of an assistant reply: `billing-faq.md › Late fees`.
    pub sources: Vec<String>,
}

/// The header of the conversation view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationHeader {
    pub id: String,
    pub channel: String,
    pub status: String,
    pub status_label: String,
    pub customer: String,
    pub intent: String,
    pub assignee: String,
    pub holder: String,
    /// The signed-in agent holds it (taken over).
    pub held_by_me: bool,
    /// `4 / 5`, or empty.
    pub csat: String,
    pub waiting: String,
    pub snoozed_until: String,
    pub created: String,
}

/// One line of the customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineCard {
    pub line_id: String,
    pub phone: String,
    pub plan_id: String,
    pub plan_name: String,
    pub status: String,
    pub data_used: String,
    /// Including refuelled data.
    pub data_limit: String,
    pub data_refuelled: String,
    /// 0..=1 of the limit, for the meter.
    pub usage_fraction: f64,
    pub over_limit: bool,
    pub roaming: bool,
    pub contract_end: String,
    /// `$5.00 per GB`
    pub refuel_price: String,
    pub active: bool,
    pub suspended: bool,
}

/// One bill of the customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BillRow {
    pub bill_id: String,
    pub period: String,
    pub due: String,
    pub total: String,
    pub status: String,
    pub overdue: bool,
    pub awaiting_payment: bool,
    pub can_extend: bool,
}

/// One entry of the customer's audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRow {
    pub at: String,
    /// `agent alice`, `customer C2004`, `system`.
    pub actor: String,
    pub action: String,
    /// `line_id=L2005, gb_amount=1`
    pub args: String,
    /// `done` or `refused: ...`
    pub result: String,
    pub refused: bool,
}

/// The masked customer profile with lines, recent bills and the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerPanel {
    pub customer_id: String,
    pub name: String,
    pub phone: String,
    pub email: String,
    /// City and state only.
    pub area: String,
    pub account_status: String,
    /// `verified (sms code)`, `claimed (phone number), not proven`, ...
    pub verification: String,
    /// Not verified: an agent may verify the customer out of band (with a reason).
    pub can_verify: bool,
    /// Self-service verification is locked after failed proofs: an agent may unlock it.
    pub locked: bool,
    pub payment_methods: Vec<String>,
    pub lines: Vec<LineCard>,
    pub bills: Vec<BillRow>,
    pub audit: Vec<AuditRow>,
    pub plans: Vec<PlanOption>,
}

/// A plan a line can move to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanOption {
    pub plan_id: String,
    /// `Premium Plan ($65.00/month, 15 GB)`
    pub label: String,
}

/// A canned response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CannedRow {
    /// `/roaming`
    pub shortcode: String,
    /// Without the slash, for form actions.
    pub code: String,
    pub text: String,
    pub updated_by: String,
    pub updated_at: String,
}

/// An agent one can assign a conversation to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentOption {
    pub name: String,
    pub label: String,
}

macro_rules! page {
    ($name:ident, $path:literal) => {
        impl $name {
            pub fn render_html(&self) -> Result<String> {
                self.render().map_err(|source| Error::Render { template: $path, source })
            }
        }
    };
}

/// `GET /console/login`
#[derive(Debug, Template)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    pub operator_name: String,
    /// The sign-in form's CSRF token (double-submitted: also in a cookie).
    pub csrf_token: String,
    /// The name typed before, kept after a failure.
    pub name: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}
page!(LoginPage, "console/login.html");

/// `GET /console`: the queue.
#[derive(Debug, Template)]
#[template(path = "console/queue.html")]
pub struct QueuePage {
    pub nav: Nav,
    pub queue: QueueView,
}
page!(QueuePage, "console/queue.html");

/// `GET /console/conversations/{id}`
#[derive(Debug, Template)]
#[template(path = "console/conversation.html")]
pub struct ConversationPage {
    pub nav: Nav,
    pub header: ConversationHeader,
    pub transcript: Vec<TranscriptItem>,
    /// The last logged event's sequence number shown (the live stream continues after it).
    pub last_seq: String,
    /// The customer panel (`console/panel.html`, included).
    pub panel: Option<CustomerPanel>,
    /// Why there is no panel (customer not identified yet, accounts loading).
    pub panel_note: String,
    /// The hand-over summary logged when the assistant transferred (replaced by the checked
    /// model summary once the page has loaded it).
    pub summary: String,
    pub agents: Vec<AgentOption>,
}
page!(ConversationPage, "console/conversation.html");

/// The customer panel, also served alone so the script can refresh it after an action.
#[derive(Debug, Template)]
#[template(path = "console/panel.html")]
pub struct PanelFragment {
    pub panel: Option<CustomerPanel>,
    /// Why there is no panel (customer not identified yet, accounts loading).
    pub panel_note: String,
}
page!(PanelFragment, "console/panel.html");

/// `GET /console/dashboard` (supervisors).
#[derive(Debug, Template)]
#[template(path = "console/dashboard.html")]
pub struct DashboardPage {
    pub nav: Nav,
    pub numbers: LiveNumbers,
    pub agents: Vec<AgentLoad>,
    pub queue: QueueView,
}
page!(DashboardPage, "console/dashboard.html");

/// `GET /console/reports` (supervisors).
#[derive(Debug, Template)]
#[template(path = "console/reports.html")]
pub struct ReportsPage {
    pub nav: Nav,
    pub days: Vec<DayRow>,
    pub intents: Vec<IntentRow>,
    pub totals: LiveNumbers,
    pub first_day: String,
    pub last_day: String,
}
page!(ReportsPage, "console/reports.html");

/// `GET /console/canned`
#[derive(Debug, Template)]
#[template(path = "console/canned.html")]
pub struct CannedPage {
    pub nav: Nav,
    pub items: Vec<CannedRow>,
    pub notice: Option<String>,
    pub error: Option<String>,
}
page!(CannedPage, "console/canned.html");

/// An error page (unknown conversation, supervisors only, ...).
#[derive(Debug, Template)]
#[template(path = "console/error.html")]
pub struct ErrorPage {
    pub nav: Option<Nav>,
    pub operator_name: String,
    pub status: u16,
    pub title: String,
    pub message: String,
}
page!(ErrorPage, "console/error.html");

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";

    fn nav() -> Nav {
        Nav {
            operator_name: "Kestrel Mobile".into(),
            agent: "alice".into(),
            role: "agent".into(),
            is_supervisor: false,
            csrf_token: "c0ffee".into(),
            active: "queue".into(),
        }
    }

    fn row() -> QueueRow {
        QueueRow {
            id: "abc".into(),
            href: "/console/conversations/abc".into(),
            channel: "web".into(),
            customer: HOSTILE.into(),
            intent: "refuel_data".into(),
            status: "pending_human".into(),
            status_label: "Waiting".into(),
            waiting_since: String::new(),
            waiting: "3 min".into(),
            summary: HOSTILE.into(),
            assignee: String::new(),
            holder: String::new(),
            flagged: false,
            snoozed_until: String::new(),
            updated: "10:00".into(),
        }
    }

    fn assert_escaped(html: &str) {
        assert!(!html.contains("<script>alert"), "raw script in the page");
        assert!(!html.contains("<img src=x"), "raw markup in the page");
        assert!(html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"), "text is escaped");
    }

    #[test]
    fn customer_text_is_escaped_in_the_transcript_and_queue() {
        let queue = QueuePage { nav: nav(), queue: QueueView { waiting: vec![row()], ..QueueView::default() } };
        assert_escaped(&queue.render_html().unwrap());
        let page = ConversationPage {
            nav: nav(),
            header: ConversationHeader {
                id: "abc".into(),
                channel: "web".into(),
                status: "open".into(),
                status_label: "Open".into(),
                customer: HOSTILE.into(),
                intent: String::new(),
                assignee: String::new(),
                holder: String::new(),
                held_by_me: false,
                csat: String::new(),
                waiting: String::new(),
                snoozed_until: String::new(),
                created: String::new(),
            },
            transcript: vec![TranscriptItem {
                seq: 0,
                at: "2025-01-01T00:00:00Z".into(),
                time: "00:00".into(),
                kind: "customer".into(),
                author: "Customer".into(),
                text: HOSTILE.into(),
                sources: vec![],
            }],
            last_seq: "0".into(),
            panel: None,
            panel_note: HOSTILE.into(),
            summary: HOSTILE.into(),
            agents: vec![],
        };
        let html = page.render_html().unwrap();
        assert_escaped(&html);
        assert!(html.contains("name=\"csrf-token\" content=\"c0ffee\""), "the CSRF token is on the page");
    }

    #[test]
    fn every_form_carries_the_csrf_token() {
        let page = CannedPage {
            nav: Nav { is_supervisor: true, role: "supervisor".into(), ..nav() },
            items: vec![CannedRow {
                shortcode: "/bye".into(),
                code: "bye".into(),
                text: "Bye".into(),
                updated_by: "sue".into(),
                updated_at: "today".into(),
            }],
            notice: None,
            error: None,
        };
        let html = page.render_html().unwrap();
        let n_forms = html.matches("<form").count();
        let n_tokens = html.matches("name=\"csrf\" value=\"c0ffee\"").count();
        assert!(n_forms >= 2 && n_forms == n_tokens, "{n_forms} forms, {n_tokens} tokens:\n{html}");
        let login = LoginPage {
            operator_name: "Kestrel".into(),
            csrf_token: "l0gin".into(),
            name: HOSTILE.into(),
            error: Some("wrong".into()),
            notice: None,
        };
        let html = login.render_html().unwrap();
        assert!(html.contains("name=\"csrf\" value=\"l0gin\""));
        assert!(!html.contains("<script>alert"));
    }
}
