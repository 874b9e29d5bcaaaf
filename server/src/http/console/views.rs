//! The console's HTML pages: the queue, a conversation, the dashboard, reports and canned
//! responses.

use super::sign_in::CsrfForm;
use super::*;

pub(super) fn engine(state: &AppState) -> Option<Arc<Engine>> {
    state.readiness.engine().cloned()
}

pub(super) fn account_store(engine: Option<&Arc<Engine>>) -> Option<AccountStore> {
    engine.map(|engine| engine.registry().store().clone())
}

pub(super) fn build_queue(state: &AppState, signed_in: &SignedIn) -> console::Result<pages::QueueView> {
    let store = account_store(engine(state).as_ref());
    let desk = signed_in.console.desk(&state.conversations);
    let now = Utc::now();
    let queue = queue::build(&state.conversations, &desk, &signed_in.agent, now)?;
    Ok(view::queue_view(&queue, store.as_ref(), now))
}

pub(super) async fn get_queue_page(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state).map_err(|e| e.into_page(&state))?;
    let worker_state = state.clone();
    let (signed_in, queue) = blocking(move || {
        let queue = build_queue(&worker_state, &signed_in)?;
        Ok((signed_in, queue))
    })
    .await
    .map_err(|e| e.into_page(&state))?;
    page(pages::QueuePage { nav: signed_in.nav(&state, "queue"), queue }.render_html())
}

/// Everything the conversation page shows.
pub(super) struct ConversationView {
    pub(super) header: pages::ConversationHeader,
    pub(super) items: Vec<pages::TranscriptItem>,
    pub(super) last_seq: Option<u64>,
    panel: Option<pages::CustomerPanel>,
    panel_note: String,
    pub(super) summary: String,
}

pub(super) fn conversation_view(
    state: &AppState,
    signed_in: &SignedIn,
    id: &str,
    with_panel: bool,
) -> console::Result<ConversationView> {
    let conversation = state.conversations.get(id)?;
    let events = state.conversations.events(id)?;
    let engine = engine(state);
    let store = account_store(engine.as_ref());
    let desk = signed_in.console.desk(&state.conversations);
    let snoozed_until = desk.snoozed_until(id)?;
    let header =
        view::conversation_header(&conversation, &events, &signed_in.agent, store.as_ref(), snoozed_until, Utc::now());
    let items: Vec<pages::TranscriptItem> = events.iter().filter_map(view::transcript_item).collect();
    let (panel, panel_note) = if with_panel { panel(state, &conversation, &events)? } else { (None, String::new()) };
    let summary = match desk.cached_summary(id)? {
        Some(cached) => cached.text,
        None => conversation
            .summary
            .clone()
            .unwrap_or_else(|| engine::dialogue::summary::summarise(&events, conversation.customer_id.as_deref())),
    };
    Ok(ConversationView { header, items, last_seq: events.last().map(|event| event.seq), panel, panel_note, summary })
}

pub(super) fn panel(
    state: &AppState,
    conversation: &engine::conversations::Conversation,
    events: &[Event],
) -> console::Result<(Option<pages::CustomerPanel>, String)> {
    let Some(customer_id) = &conversation.customer_id else {
        return Ok((None, "The customer is not identified yet. Ask for their phone number or customer id.".into()));
    };
    let Some(engine) = engine(state) else {
        return Ok((None, "The account system is still loading.".into()));
    };
    let locked = engine.identity().is_locked(customer_id)?;
    let panel = view::customer_panel(engine.registry().store(), customer_id, view::verification(events), locked)?;
    match panel {
        Some(panel) => Ok((Some(panel), String::new())),
        None => Ok((None, format!("No customer {customer_id} in the account system."))),
    }
}

pub(super) async fn get_conversation_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Reply {
    let signed_in = signed_in(&request, &state).map_err(|e| e.into_page(&state))?;
    let id = path.into_inner();
    let worker_state = state.clone();
    let (signed_in, view, agents) = blocking(move || {
        let view = conversation_view(&worker_state, &signed_in, &id, true)?;
        let agents = signed_in.console.agents().list()?;
        Ok((signed_in, view, agents))
    })
    .await
    .map_err(|e| e.into_page(&state))?;
    let agents = agents
        .into_iter()
        .map(|agent| pages::AgentOption {
            label: if agent.name == signed_in.agent.name {
                format!("{} (me)", agent.name)
            } else {
                agent.name.to_string()
            },
            name: agent.name.to_string(),
        })
        .collect();
    page(
        pages::ConversationPage {
            nav: signed_in.nav(&state, "queue"),
            header: view.header,
            transcript: view.items,
            last_seq: view.last_seq.map(|seq| seq.to_string()).unwrap_or_default(),
            panel: view.panel,
            panel_note: view.panel_note,
            summary: view.summary,
            agents,
        }
        .render_html(),
    )
}

pub(super) async fn get_dashboard_page(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state).map_err(|e| e.into_page(&state))?;
    signed_in.require_supervisor("see the dashboard").map_err(|e| e.into_page(&state))?;
    let worker_state = state.clone();
    let (signed_in, numbers, agents, queue) = blocking(move || {
        let numbers = view::live_numbers(&worker_state.conversations, Utc::now())?;
        let agents = view::agent_loads(&worker_state.conversations, &signed_in.console.agents().list()?)?;
        let queue = build_queue(&worker_state, &signed_in)?;
        Ok((signed_in, numbers, agents, queue))
    })
    .await
    .map_err(|e| e.into_page(&state))?;
    page(pages::DashboardPage { nav: signed_in.nav(&state, "dashboard"), numbers, agents, queue }.render_html())
}

pub(super) fn report_rows(report: &reports::Report) -> (Vec<pages::DayRow>, Vec<pages::IntentRow>, pages::LiveNumbers) {
    let days = report
        .days
        .iter()
        .rev()
        .map(|(date, stats)| {
            let numbers = view::numbers(stats, reports::Now::default());
            pages::DayRow {
                date: date.to_string(),
                conversations: stats.conversations,
                contained: stats.contained,
                containment: numbers.containment,
                containment_fraction: stats.containment().unwrap_or(0.0),
                transferred: stats.transferred,
                first_response: numbers.first_response,
                csat: numbers.csat,
            }
        })
        .collect();
    let most = report.top_intents.first().map_or(1, |(_, count)| (*count).max(1));
    let intents = report
        .top_intents
        .iter()
        .map(|(intent, count)| pages::IntentRow {
            intent: intent.clone(),
            count: *count,
            fraction: *count as f64 / most as f64,
        })
        .collect();
    (days, intents, view::numbers(&report.totals, reports::Now::default()))
}

pub(super) async fn get_reports_page(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state).map_err(|e| e.into_page(&state))?;
    signed_in.require_supervisor("see the reports").map_err(|e| e.into_page(&state))?;
    let conversations = state.conversations.clone();
    let today = Utc::now().date_naive();
    let report =
        blocking(move || reports::report(&conversations, today, REPORT_DAYS)).await.map_err(|e| e.into_page(&state))?;
    let (days, intents, totals) = report_rows(&report);
    let first_day = report.days.first().map(|(date, _)| date.to_string()).unwrap_or_default();
    page(
        pages::ReportsPage {
            nav: signed_in.nav(&state, "reports"),
            days,
            intents,
            totals,
            first_day,
            last_day: today.to_string(),
        }
        .render_html(),
    )
}

pub(super) fn canned_rows(console: &Console) -> console::Result<Vec<pages::CannedRow>> {
    Ok(console
        .canned()
        .list()?
        .into_iter()
        .map(|canned| pages::CannedRow {
            shortcode: canned.shortcode.display(),
            code: canned.shortcode.as_str().to_string(),
            text: canned.text,
            updated_by: canned.updated_by,
            updated_at: canned.updated_at.format("%Y-%m-%d %H:%M").to_string(),
        })
        .collect())
}

pub(super) fn canned_page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Reply {
    let items = canned_rows(&signed_in.console)?;
    let html = pages::CannedPage { nav: signed_in.nav(state, "canned"), items, notice, error }
        .render_html()
        .map_err(|error| ConsoleError::internal("rendering the canned page failed", &error))?;
    Ok(with_page_headers(HttpResponse::build(status)).body(html))
}

pub(super) async fn get_canned_page(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state).map_err(|e| e.into_page(&state))?;
    canned_page(&state, &signed_in, StatusCode::OK, None, None)
}

#[derive(Deserialize)]
pub(super) struct CannedForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    shortcode: String,
    #[serde(default)]
    text: String,
}

pub(super) async fn post_canned(request: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Reply {
    let form: CannedForm =
        parse_form(&body).unwrap_or(CannedForm { csrf: String::new(), shortcode: String::new(), text: String::new() });
    let signed_in = signed_in_with_csrf(&request, &state, Some(&form.csrf)).map_err(|e| e.into_page(&state))?;
    signed_in.require_supervisor("manage canned responses").map_err(|e| e.into_page(&state))?;
    let saved = Shortcode::parse(&form.shortcode)
        .and_then(|code| signed_in.console.canned().put(&code, &form.text, signed_in.agent.name.as_str()));
    match saved {
        Ok(canned) => canned_page(
            &state,
            &signed_in,
            StatusCode::OK,
            Some(format!("Saved {}.", canned.shortcode.display())),
            None,
        ),
        Err(error @ (Error::InvalidShortcode(_) | Error::EmptyText | Error::TextTooLong { .. })) => {
            canned_page(&state, &signed_in, StatusCode::BAD_REQUEST, None, Some(error.to_string()))
        }
        Err(error) => Err(ConsoleError::from(error).into_page(&state)),
    }
}

pub(super) async fn post_canned_delete(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let form: CsrfForm = parse_form(&body).unwrap_or(CsrfForm { csrf: String::new() });
    let signed_in = signed_in_with_csrf(&request, &state, Some(&form.csrf)).map_err(|e| e.into_page(&state))?;
    signed_in.require_supervisor("manage canned responses").map_err(|e| e.into_page(&state))?;
    let code = Shortcode::parse(&path).map_err(|e| ConsoleError::from(e).into_page(&state))?;
    if signed_in.console.canned().delete(&code)? {
        canned_page(&state, &signed_in, StatusCode::OK, Some(format!("Deleted {}.", code.display())), None)
    } else {
        canned_page(
            &state,
            &signed_in,
            StatusCode::NOT_FOUND,
            None,
            Some(format!("No canned response {}.", code.display())),
        )
    }
}
