//! Live updates of the console as server-sent events: the queue (and numbers for
//! supervisors) and one conversation (transcript items, header, panel).

use super::api::header_json;
use super::views::build_queue;
use super::*;

/// One server-sent event.
/// Whether the session behind a stream is still live.
pub(super) fn session_alive(state: &AppState, token: &str) -> bool {
    open_console(state).ok().and_then(|console| console.signed_in(token).ok().flatten()).is_some()
}

pub(super) async fn get_queue_stream(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let token = session_token(&request).unwrap_or_default();
    let changes = state.conversations.subscribe();
    let (sender, receiver) = mpsc::channel::<web::Bytes>(64);
    actix_web::rt::spawn(queue_pump(state.clone().into_inner(), signed_in, token, sender, changes));
    Ok(sse_response(receiver))
}

pub(super) async fn queue_pump(
    state: Arc<AppState>,
    signed_in: SignedIn,
    token: String,
    sender: mpsc::Sender<web::Bytes>,
    mut changes: broadcast::Receiver<ConversationChange>,
) {
    if sender.send(web::Bytes::from_static(b"retry: 3000\n\n")).await.is_err() {
        return;
    }
    let signed_in = Arc::new(signed_in);
    let mut last_queue: Option<pages::QueueView> = None;
    let mut last_numbers: Option<pages::LiveNumbers> = None;
    let mut dirty = true;
    let mut last_refresh = Instant::now();
    let mut tick = tokio::time::interval(LIVE_TICK);
    loop {
        tokio::select! {
            _ = sender.closed() => return,
            change = changes.recv() => match change {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => dirty = true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                let periodic = last_refresh.elapsed() >= KEEP_ALIVE;
                if !dirty && !periodic {
                    continue;
                }
                dirty = false;
                last_refresh = Instant::now();
                let worker_state = state.clone();
                let worker_signed_in = signed_in.clone();
                let worker_token = token.clone();
                let snapshot = web::block(move || -> console::Result<Option<(pages::QueueView, Option<pages::LiveNumbers>)>> {
                    if !session_alive(&worker_state, &worker_token) {
                        return Ok(None);
                    }
                    let queue = build_queue(&worker_state, &worker_signed_in)?;
                    let numbers = if worker_signed_in.agent.role.is_supervisor() {
                        Some(view::live_numbers(&worker_state.conversations, Utc::now())?)
                    } else {
                        None
                    };
                    Ok(Some((queue, numbers)))
                })
                .await;
                let (queue, numbers) = match snapshot {
                    Ok(Ok(Some(snapshot))) => snapshot,
                    Ok(Ok(None)) => {
                        let _ = sender.send(sse_event("signed_out", None, &json!({}))).await;
                        return;
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "the live queue could not be built");
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the live queue task failed");
                        continue;
                    }
                };
                if last_queue.as_ref() != Some(&queue) {
                    if sender.send(sse_event("queue", None, &queue)).await.is_err() {
                        return;
                    }
                    last_queue = Some(queue);
                }
                if numbers.is_some() && last_numbers != numbers {
                    if sender.send(sse_event("numbers", None, &numbers)).await.is_err() {
                        return;
                    }
                    last_numbers = numbers;
                }
                if periodic && sender.send(web::Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct StreamQuery {
    after: Option<u64>,
}

pub(super) async fn get_conversation_stream(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let id = path.into_inner();
    let query = web::Query::<StreamQuery>::from_query(request.query_string())
        .map_err(|error| ConsoleError::new(StatusCode::BAD_REQUEST, "bad_query", error.to_string()))?
        .into_inner();
    let last_event_id = request
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if !state.conversations.exists(&id)? {
        return Err(Error::UnknownConversation(id).into());
    }
    let token = session_token(&request).unwrap_or_default();
    // Subscribe before reading the log, so nothing falls between the two.
    let changes = state.conversations.subscribe();
    let (sender, receiver) = mpsc::channel::<web::Bytes>(256);
    let pump = ConversationPump {
        state: state.clone().into_inner(),
        signed_in: Arc::new(signed_in),
        token,
        id,
        sender,
        last_seq: last_event_id.or(query.after),
    };
    actix_web::rt::spawn(pump.run(changes));
    Ok(sse_response(receiver))
}

pub(super) struct ConversationPump {
    state: Arc<AppState>,
    signed_in: Arc<SignedIn>,
    token: String,
    id: String,
    sender: mpsc::Sender<web::Bytes>,
    last_seq: Option<u64>,
}

/// The listener went away.
pub(super) struct Gone;

impl ConversationPump {
    async fn run(mut self, mut changes: broadcast::Receiver<ConversationChange>) {
        if self.send(web::Bytes::from_static(b"retry: 3000\n\n")).await.is_err() || self.replay().await.is_err() {
            return;
        }
        let mut header_dirty = true;
        let mut panel_dirty = false;
        let mut last_refresh = Instant::now();
        let mut tick = tokio::time::interval(LIVE_TICK);
        loop {
            let sent = tokio::select! {
                _ = self.sender.closed() => return,
                change = changes.recv() => match change {
                    Ok(change) if change.id == self.id || change.id == engine::conversations::ANY_CONVERSATION => {
                        header_dirty = true;
                        match change.event {
                            Some(event) => {
                                panel_dirty |= matches!(event.kind, EventKind::ActionDone { .. } | EventKind::ActionRefused { .. } | EventKind::CustomerIdentified { .. });
                                self.forward(&event).await
                            }
                            // A header change, or changes another instance made: the log after
                            // the last event sent.
                            None => {
                                panel_dirty = true;
                                self.replay().await
                            }
                        }
                    }
                    Ok(_) => Ok(()),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        header_dirty = true;
                        panel_dirty = true;
                        self.replay().await
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    let periodic = last_refresh.elapsed() >= KEEP_ALIVE;
                    if periodic {
                        last_refresh = Instant::now();
                        let state = self.state.clone();
                        let token = self.token.clone();
                        let alive = web::block(move || session_alive(&state, &token)).await.unwrap_or(false);
                        if !alive {
                            let _ = self.send(sse_event("signed_out", None, &json!({}))).await;
                            return;
                        }
                    }
                    let mut sent = Ok(());
                    if header_dirty {
                        header_dirty = false;
                        sent = self.send_header().await;
                    }
                    if sent.is_ok() && panel_dirty {
                        panel_dirty = false;
                        sent = self.send(sse_event("panel", None, &json!({}))).await;
                    }
                    if sent.is_ok() && periodic {
                        sent = self.send(web::Bytes::from_static(b": keep-alive\n\n")).await;
                    }
                    sent
                }
            };
            if sent.is_err() {
                return;
            }
        }
    }

    async fn send(&self, bytes: web::Bytes) -> Result<(), Gone> {
        self.sender.send(bytes).await.map_err(|_| Gone)
    }

    async fn send_header(&self) -> Result<(), Gone> {
        let state = self.state.clone();
        let signed_in = self.signed_in.clone();
        let id = self.id.clone();
        match web::block(move || header_json(&state, &signed_in, &id)).await {
            Ok(Ok(header)) => self.send(sse_event("header", None, &header)).await,
            Ok(Err(error)) => {
                tracing::warn!(%error, "the live header could not be built");
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    /// Sends the transcript items logged after `last_seq`.
    async fn replay(&mut self) -> Result<(), Gone> {
        let conversations = self.state.conversations.clone();
        let id = self.id.clone();
        let events = web::block(move || conversations.events(&id)).await.ok().and_then(Result::ok).unwrap_or_default();
        for event in events {
            self.forward(&event).await?;
        }
        Ok(())
    }

    async fn forward(&mut self, event: &Event) -> Result<(), Gone> {
        if self.last_seq.is_some_and(|last| event.seq <= last) {
            return Ok(());
        }
        self.last_seq = Some(event.seq);
        match view::transcript_item(event) {
            Some(item) => self.send(sse_event("item", Some(event.seq), &item)).await,
            None => Ok(()),
        }
    }
}
