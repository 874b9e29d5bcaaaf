//! The console's JSON calls: reads (queue, numbers, reports, knowledge, a conversation, its
//! panel, suggestions and summary) and changes (take over, hand back, send, note, close,
//! snooze, assign, account actions).

use super::views::{account_store, build_queue, canned_rows, conversation_view, engine, panel, report_rows};
use super::*;

pub(super) async fn get_queue(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let worker_state = state.clone();
    let queue = blocking(move || build_queue(&worker_state, &signed_in)).await?;
    json_ok(&queue)
}

pub(super) async fn get_numbers(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    signed_in.require_supervisor("see the live numbers")?;
    let conversations = state.conversations.clone();
    let numbers = blocking(move || view::live_numbers(&conversations, Utc::now())).await?;
    json_ok(&numbers)
}

pub(super) async fn get_reports(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    signed_in.require_supervisor("see the reports")?;
    let conversations = state.conversations.clone();
    let report = blocking(move || reports::report(&conversations, Utc::now().date_naive(), REPORT_DAYS)).await?;
    let (days, intents, totals) = report_rows(&report);
    json_ok(&json!({"days": days, "top_intents": intents, "totals": totals}))
}

pub(super) async fn get_canned(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    json_ok(&canned_rows(&signed_in.console)?)
}

#[derive(Deserialize)]
pub(super) struct KnowledgeQuery {
    #[serde(default)]
    q: String,
}

pub(super) async fn get_knowledge(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let _signed_in = signed_in(&request, &state)?;
    let query = web::Query::<KnowledgeQuery>::from_query(request.query_string())
        .map_err(|error| ConsoleError::new(StatusCode::BAD_REQUEST, "bad_query", error.to_string()))?
        .into_inner()
        .q;
    let query = console::agent_text(&query, MAX_QUERY_CHARS)?;
    let engine = engine(&state).ok_or(Error::NotReady)?;
    let passages = blocking(move || Ok(engine.search_knowledge(&query, KNOWLEDGE_RESULTS)?)).await?;
    let results: Vec<Value> = passages
        .into_iter()
        .map(|passage| {
            let text: String = passage.text.chars().take(700).collect();
            json!({"document": passage.document, "section": passage.section, "text": text, "score": passage.score})
        })
        .collect();
    json_ok(&json!({"results": results}))
}

pub(super) async fn get_conversation(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let id = path.into_inner();
    let worker_state = state.clone();
    let view = blocking(move || conversation_view(&worker_state, &signed_in, &id, false)).await?;
    json_ok(&json!({"header": view.header, "items": view.items, "last_seq": view.last_seq, "summary": view.summary}))
}

pub(super) async fn get_panel(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let _signed_in = signed_in(&request, &state)?;
    let id = path.into_inner();
    let worker_state = state.clone();
    let (panel, panel_note) = blocking(move || {
        let conversation = worker_state.conversations.get(&id)?;
        let events = worker_state.conversations.events(&id)?;
        panel(&worker_state, &conversation, &events)
    })
    .await?;
    let html = pages::PanelFragment { panel, panel_note }
        .render_html()
        .map_err(|error| ConsoleError::internal("rendering the panel failed", &error))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(html))
}

#[derive(Serialize)]
pub(super) struct SuggestionOut {
    text: String,
    /// `greeting`, `next_step` or `knowledge`.
    origin: String,
    sources: Vec<String>,
}

pub(super) async fn get_suggestions(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let id = path.into_inner();
    let engine = engine(&state).ok_or(Error::NotReady)?;
    let suggestions = blocking(move || Ok(engine.suggest_replies(&id, signed_in.agent.name.as_str())?)).await?;
    let suggestions: Vec<SuggestionOut> = suggestions
        .into_iter()
        .map(|suggestion| SuggestionOut {
            text: suggestion.text,
            origin: suggestion.origin.to_string(),
            sources: suggestion.sources.iter().map(|s| format!("{} › {}", s.document, s.section)).collect(),
        })
        .collect();
    json_ok(&json!({"suggestions": suggestions}))
}

pub(super) async fn get_summary(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let id = path.into_inner();
    let engine = engine(&state);
    let conversations = state.conversations.clone();
    let (text, source) =
        blocking(move || signed_in.console.desk(&conversations).handover_summary(&id, engine.as_deref())).await?;
    json_ok(&json!({"summary": text, "source": source.as_str()}))
}

pub(super) fn header_json(
    state: &AppState,
    signed_in: &SignedIn,
    id: &str,
) -> console::Result<pages::ConversationHeader> {
    let conversation = state.conversations.get(id)?;
    let events = state.conversations.events(id)?;
    let store = account_store(engine(state).as_ref());
    let snoozed_until = signed_in.console.desk(&state.conversations).snoozed_until(id)?;
    Ok(view::conversation_header(&conversation, &events, &signed_in.agent, store.as_ref(), snoozed_until, Utc::now()))
}

/// Runs one desk operation for a signed-in agent with a valid CSRF header; answers the header.
pub(super) async fn desk_change(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: String,
    work: impl FnOnce(&AppState, &SignedIn, &str) -> console::Result<Value> + Send + 'static,
) -> Reply {
    let signed_in = signed_in_with_csrf(&request, &state, None)?;
    let worker_state = state.clone();
    let out = blocking(move || {
        let mut out = work(&worker_state, &signed_in, &id)?;
        out["header"] = serde_json::to_value(header_json(&worker_state, &signed_in, &id)?)?;
        Ok(out)
    })
    .await?;
    json_ok(&out)
}

pub(super) async fn post_take_over(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    desk_change(request, state, path.into_inner(), |state, signed_in, id| {
        signed_in.console.desk(&state.conversations).take_over(id, &signed_in.agent)?;
        Ok(json!({}))
    })
    .await
}

pub(super) async fn post_hand_back(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    desk_change(request, state, path.into_inner(), |state, signed_in, id| {
        signed_in.console.desk(&state.conversations).hand_back(id, &signed_in.agent)?;
        Ok(json!({}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TextBody {
    text: String,
}

pub(super) async fn post_message(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let text = parse_json::<TextBody>(&body)?.text;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        let event = signed_in.console.desk(&state.conversations).send(id, &signed_in.agent, &text)?;
        Ok(json!({"item": view::transcript_item(&event)}))
    })
    .await
}

pub(super) async fn post_note(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let text = parse_json::<TextBody>(&body)?.text;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        let event = signed_in.console.desk(&state.conversations).note(id, &signed_in.agent, &text)?;
        Ok(json!({"item": view::transcript_item(&event)}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    reason: String,
}

/// The agent verifies the conversation's customer out of band (a reason is required; audited).
pub(super) async fn post_verify(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let reason = parse_json::<ReasonBody>(&body)?.reason;
    let engine = engine(&state).ok_or(Error::NotReady)?;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        signed_in.console.desk(&state.conversations).verify_customer(id, &signed_in.agent, &reason, &engine)?;
        Ok(json!({}))
    })
    .await
}

/// The agent lifts the lockout of the customer's self-service verification (reason required;
/// audited).
pub(super) async fn post_unlock(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let reason = parse_json::<ReasonBody>(&body)?.reason;
    let engine = engine(&state).ok_or(Error::NotReady)?;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        signed_in.console.desk(&state.conversations).unlock_verification(id, &signed_in.agent, &reason, &engine)?;
        Ok(json!({}))
    })
    .await
}

pub(super) async fn post_close(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let engine = engine(&state).ok_or(Error::NotReady)?;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        signed_in.console.desk(&state.conversations).close(id, &signed_in.agent, &engine)?;
        Ok(json!({}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SnoozeBody {
    minutes: u32,
}

pub(super) async fn post_snooze(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let minutes = parse_json::<SnoozeBody>(&body)?.minutes;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        let until = signed_in.console.desk(&state.conversations).snooze(id, &signed_in.agent, minutes)?;
        Ok(json!({"until": until.to_rfc3339()}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AssignBody {
    /// An agent's name; null or empty: nobody.
    #[serde(default)]
    agent: Option<String>,
}

pub(super) async fn post_assign(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let target = parse_json::<AssignBody>(&body)?.agent;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        signed_in.console.desk(&state.conversations).assign(id, &signed_in.agent, target.as_deref())?;
        Ok(json!({}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ActionBody {
    name: String,
    #[serde(default)]
    args: Value,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// Describes the exact change an action will make, and whether the policy would refuse it now;
/// returns the idempotency key the confirmation must send back (so a double click runs once).
pub(super) async fn post_action_preview(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let signed_in = signed_in_with_csrf(&request, &state, None)?;
    let action: ActionBody = parse_json(&body)?;
    let id = path.into_inner();
    let engine = engine(&state).ok_or(Error::NotReady)?;
    let conversations = state.conversations.clone();
    let out = blocking(move || {
        let desk = signed_in.console.desk(&conversations);
        let preview = desk.preview_action(&id, &signed_in.agent, engine.registry(), &action.name, action.args)?;
        let description = view::describe_action(engine.registry().store(), &preview.request)?;
        Ok(json!({
            "name": preview.request.name().as_str(),
            "args": preview.request.args_json(),
            "description": description,
            "refusal": preview.refusal,
            "idempotency_key": format!("console-{}", uuid::Uuid::new_v4()),
        }))
    })
    .await?;
    json_ok(&out)
}

pub(super) async fn post_action(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let signed_in = signed_in_with_csrf(&request, &state, None)?;
    let action: ActionBody = parse_json(&body)?;
    let id = path.into_inner();
    let key = match action.idempotency_key {
        Some(key) => IdempotencyKey::parse(key)
            .map_err(|error| ConsoleError::new(StatusCode::BAD_REQUEST, "bad_idempotency_key", error.to_string()))?,
        None => {
            return Err(ConsoleError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_required",
                "send the idempotency_key the preview returned",
            ));
        }
    };
    let engine = engine(&state).ok_or(Error::NotReady)?;
    let desk = signed_in.console.desk(&state.conversations);
    let result = desk.run_action(&id, &signed_in.agent, engine.registry(), &action.name, action.args, key).await?;
    tracing::info!(agent = %signed_in.agent.name, conversation_id = %id, action = %result.action, replayed = result.replayed, "console action");
    json_ok(
        &json!({"action": result.action, "args": result.args, "output": result.output, "replayed": result.replayed}),
    )
}
