//! Account actions as the dialogue runs them: through the registry, as the verified customer,
//! with idempotency keys and confirmation tokens, logged; and the hand-over to a person.

use super::{Work, ms};
use crate::conversations::EventKind;
use crate::dialogue::{ActionOut, Engine, EngineError};
use accounts::{ActionRequest, Actor, ConfirmationToken, ConversationId, CustomerId, IdempotencyKey};
use prompts::EndOutcome;
use serde_json::{Value, json};
use std::time::Instant;

pub(super) fn conversation_id(work: &Work<'_>) -> Result<ConversationId, EngineError> {
    ConversationId::parse(work.conversation_id.to_string())
        .map_err(|error| EngineError::Internal(anyhow::anyhow!("conversation id: {error}")))
}

pub(super) fn request_is_write(action: &str) -> bool {
    action.parse::<accounts::ActionName>().map(|name| name.kind().is_write()).unwrap_or(false)
}

impl Engine {
    /// Runs an account action for this conversation's customer; logs it; returns `done` or `refused`.
    pub(super) fn run_action(
        &self,
        work: &mut Work<'_>,
        action: &str,
        args: Value,
        token: Option<String>,
    ) -> Result<String, EngineError> {
        let needed = self.identity.settings.requirements.action(action);
        if work.state.assurance() < needed {
            // The level each action needs is data (`[identity.requirements]`); a flow that got
            // here without it is refused before anything is read or changed.
            let reason = format!("{action} needs a {needed} customer");
            tracing::warn!(action, %needed, "action refused: the customer is not verified enough");
            work.actions.push(ActionOut { name: action.to_string(), args: args.clone(), status: "refused".into() });
            self.log(
                work,
                vec![EventKind::ActionRefused {
                    action: action.to_string(),
                    args,
                    code: "not_verified".into(),
                    reason,
                }],
            )?;
            return Ok("refused".into());
        }
        let started = Instant::now();
        let actor = self.actor(work)?;
        let actor_label = match &actor {
            Actor::Customer { customer_id, .. } => format!("customer:{customer_id}"),
            Actor::Agent { name } => format!("agent:{name}"),
            Actor::System => "system".to_string(),
        };
        self.log(
            work,
            vec![EventKind::ActionRequested { action: action.to_string(), args: args.clone(), actor: actor_label }],
        )?;
        let request = ActionRequest::parse(action, args.clone());
        let result = request.and_then(|request| {
            let mut call = accounts::ActionCall::new(request, actor);
            if request_is_write(action) {
                let key =
                    token.clone().unwrap_or_else(|| format!("{}-{}", work.conversation_id, work.state.n_messages));
                let key = IdempotencyKey::parse(format!("conv-{key}")).map_err(|error| {
                    accounts::Error::InvalidArguments { action: action.to_string(), why: error.to_string() }
                })?;
                call = call.with_idempotency_key(key);
            }
            if let Some(token) = &token {
                call = call.with_confirmation(ConfirmationToken::from_text(token.clone()));
            }
            self.registry.run_blocking(call)
        });
        work.times.action_ms += ms(started);
        match result {
            Ok(outcome) => {
                let output = outcome.output.to_json();
                work.actions.push(ActionOut { name: action.to_string(), args: args.clone(), status: "done".into() });
                self.log(work, vec![EventKind::ActionDone { action: action.to_string(), args, result: output }])?;
                Ok("done".into())
            }
            Err(error) => {
                let (code, message) = match &error {
                    accounts::Error::Refused(refusal) => (refusal.code().to_string(), refusal.customer_message()),
                    other => ("error".to_string(), other.to_string()),
                };
                tracing::info!(action, code, %message, "action refused");
                work.actions.push(ActionOut { name: action.to_string(), args: args.clone(), status: "refused".into() });
                self.log(
                    work,
                    vec![EventKind::ActionRefused {
                        action: action.to_string(),
                        args,
                        code: code.clone(),
                        reason: message.clone(),
                    }],
                )?;
                if !action.starts_with("get_customer") {
                    work.extra.insert("refusal".into(), message);
                    self.say(work, "refused")?;
                }
                Ok("refused".into())
            }
        }
    }

    /// Who acts: the verified customer of the conversation, else Switchboard itself (look-ups).
    pub(super) fn actor(&self, work: &Work<'_>) -> Result<Actor, EngineError> {
        Ok(match &work.state.customer {
            Some(customer) if customer.verified => match CustomerId::parse(customer.customer_id.clone()) {
                Ok(id) => Actor::customer(id, conversation_id(work)?),
                Err(_) => Actor::System,
            },
            _ => Actor::System,
        })
    }

    pub(super) fn hand_off(&self, work: &mut Work<'_>, reason: &str, template: &str) -> Result<(), EngineError> {
        let summary = self.handoff_summary(work);
        let mut args = json!({"summary": summary});
        if let Some(customer) = &work.state.customer {
            args["customer_id"] = json!(customer.customer_id);
        }
        let _ = self.run_action(work, "transfer_to_human_agents", args, None)?;
        self.end_all(work, EndOutcome::Failed)?;
        self.log(work, vec![EventKind::Handoff { reason: reason.to_string(), summary: Some(summary) }])?;
        work.handoff = true;
        self.say(work, template)
    }

    /// A short summary of the conversation from its log, for the human agent.
    pub(super) fn handoff_summary(&self, work: &Work<'_>) -> String {
        // The log as the turn found it, and this turn's events that are not in it yet.
        let mut events = work.log.clone();
        let next = events.last().map_or(0, |event| event.seq + 1);
        let now = chrono::Utc::now();
        events.extend(work.pending.iter().enumerate().map(|(n, kind)| crate::conversations::Event {
            seq: next + n as u64,
            at: now,
            kind: kind.clone(),
        }));
        crate::dialogue::summary::summarise(&events, work.state.customer.as_ref().map(|c| c.customer_id.as_str()))
    }
}
