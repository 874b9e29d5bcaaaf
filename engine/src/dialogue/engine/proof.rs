//! Proofs of who the customer is: one-time codes texted to a number on file, the channel
//! (a WhatsApp sender), the network (a recent SIM swap blocks codes and changes), and the
//! lapse of a verification after a silence. Failed proofs count towards a lockout that holds
//! across conversations.

use serde_json::{Value, json};

use super::identity::{CLAIM_LOOKUP, ClaimLookup, VERIFICATION_CODE};
use super::understanding::Understanding;
use super::{Step, Work};
use crate::conversations::{Channel, EventKind};
use crate::dialogue::state::GLOBAL;
use crate::dialogue::{ActionCall, ActionOut, Engine, EngineError};
use crate::identity::{Assurance, CodeCheck, Proof};
use accounts::CustomerId;
use accounts::ids::PhoneNumber;
use accounts::mask::mask_number;
use prompts::EndOutcome;

/// Codes one conversation may have texted (a new one after each expiry); more means a person.
const MAX_CODES_PER_CONVERSATION: usize = 3;

impl Engine {
    /// At the start of a turn, before the message is logged: a verification lapses after a
    /// silence, and a WhatsApp sender who owns a line on file is verified by the channel.
    pub(super) fn identity_at_turn_start(
        &self,
        work: &mut Work<'_>,
        channel_sender: Option<&str>,
    ) -> Result<(), EngineError> {
        let now = self.identity.clock.now();
        if work.state.assurance() == Assurance::Verified
            && let Some(last) = work.state.last_message_at
        {
            let idle = now - last;
            if idle > chrono::Duration::minutes(self.identity.settings.verified_minutes as i64) {
                let idle_minutes = idle.num_minutes().max(0) as u64;
                self.log(work, vec![EventKind::VerificationLapsed { idle_minutes }])?;
            }
        }
        if work.channel == Channel::Whatsapp
            && work.state.assurance() < Assurance::Verified
            && let Some(sender) = channel_sender
            && let Ok(number) = PhoneNumber::parse(sender)
            && let Some(customer) = self.registry.store().customer_by_phone(&number).map_err(anyhow::Error::from)?
        {
            // Meta proved the sender's number: its owner is verified.
            self.bind_customer(work, customer.customer_id.as_str(), true, Proof::WhatsappSender.as_str())?;
        }
        Ok(())
    }

    /// Sends a code to a number on `customer_id`'s account: `number` when it is one of their
    /// lines or their contact number, else the contact number. Refused (and a person offered)
    /// when the customer's self-service verification is locked, the number's SIM was swapped
    /// recently, or the gateway or the network API does not answer.
    pub(super) fn start_proof(
        &self,
        work: &mut Work<'_>,
        customer_id: &str,
        number: Option<&str>,
    ) -> Result<(), EngineError> {
        let customer = CustomerId::parse(customer_id.to_string())
            .ok()
            .and_then(|id| self.registry.store().customer(&id).ok().flatten())
            .ok_or_else(|| anyhow::anyhow!("claimed customer {customer_id} is not in the store"))?;
        if self.identity.is_locked(customer_id).map_err(anyhow::Error::from)? {
            return self.proof_refused(
                work,
                Some(customer_id),
                "self-service verification is locked",
                "verification_locked",
            );
        }
        let codes_sent = work.state.codes_sent;
        if codes_sent >= MAX_CODES_PER_CONVERSATION {
            return self.proof_refused(
                work,
                Some(customer_id),
                "too many codes in one conversation",
                "verification_failed",
            );
        }
        let to = self.proof_number(&customer, number);
        if !self.sim_is_safe(work, customer_id, &to)? {
            return Ok(());
        }
        let Some(e164) = self.identity.settings.e164(&to) else {
            return self.proof_refused(
                work,
                Some(customer_id),
                "no number to text on file",
                "verification_unavailable",
            );
        };
        let settings = &self.identity.settings;
        let code = self
            .identity
            .codes
            .issue(
                work.conversation_id,
                customer_id,
                &to,
                self.identity.clock.now(),
                chrono::Duration::minutes(settings.code_minutes as i64),
                settings.code_attempts,
            )
            .map_err(anyhow::Error::from)?;
        let text = self.sms_text(&code)?;
        let key = format!("verify-{}-{}", work.conversation_id, codes_sent + 1);
        if let Err(error) = self.identity.sms.send(&e164, &text, &key) {
            tracing::warn!(%error, "the verification text could not be sent");
            return self.proof_refused(work, Some(customer_id), "the SMS gateway failed", "verification_unavailable");
        }
        self.log(
            work,
            vec![EventKind::VerificationCodeSent { customer_id: customer_id.to_string(), to: mask_number(&to) }],
        )?;
        self.say(work, "code_sent")?;
        work.awaiting = Some(VERIFICATION_CODE.into());
        Ok(())
    }

    /// The number a proof goes to: `number` when it is one of the customer's lines or their
    /// contact number, else the contact number on file.
    fn proof_number(&self, customer: &accounts::domain::Customer, number: Option<&str>) -> String {
        let on_account = |number: &str| {
            let own_line = customer
                .line_ids
                .iter()
                .filter_map(|id| self.registry.store().line(id).ok().flatten())
                .any(|line| line.phone_number.is(number));
            own_line || customer.phone_number.is(number)
        };
        match number.filter(|number| on_account(number)) {
            Some(number) => number.to_string(),
            None => customer.phone_number.as_str().to_string(),
        }
    }

    /// CAMARA Number Verification: whether the phone that holds `access_token` is the number the
    /// claim's proof would go to; verified when it is.
    pub(super) fn network_proof(&self, work: &mut Work<'_>, access_token: &str) -> Result<(), EngineError> {
        let Some(bound) = work.state.customer.clone() else {
            self.say(work, "network_no_claim")?;
            return Ok(());
        };
        if bound.verified {
            self.say(work, "verified")?;
            return Ok(());
        }
        let customer = CustomerId::parse(bound.customer_id.clone())
            .ok()
            .and_then(|id| self.registry.store().customer(&id).ok().flatten())
            .ok_or_else(|| anyhow::anyhow!("claimed customer {} is not in the store", bound.customer_id))?;
        let claim_number = work.state.global(super::identity::CLAIM_NUMBER).map(str::to_string);
        let number = self.proof_number(&customer, claim_number.as_deref());
        let e164 = self.identity.settings.e164(&number).unwrap_or_default();
        let answer = match &self.identity.network {
            Some(network) => network.number_verified(access_token, &e164),
            None => Err(crate::identity::NetworkError::Unreachable("no network APIs configured".into())),
        };
        match answer {
            Ok(true) => self.verified(work, &bound.customer_id, Proof::NetworkNumberVerification),
            Ok(false) => {
                if self.failed_proof(work, &bound.customer_id, "the phone's number is not the one on file")? {
                    return Ok(());
                }
                self.say(work, "network_not_verified")?;
                work.awaiting = Some(VERIFICATION_CODE.into());
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%error, "number verification failed");
                let reason = "the network API did not answer".to_string();
                self.log(work, vec![EventKind::ProofFailed { customer_id: Some(bound.customer_id), reason }])?;
                self.say(work, "network_not_verified")?;
                work.awaiting = Some(VERIFICATION_CODE.into());
                Ok(())
            }
        }
    }

    /// A claim that matches no account gets the same answer as one that does, and the same
    /// attempts: a code nobody receives.
    pub(super) fn start_decoy_proof(&self, work: &mut Work<'_>) -> Result<(), EngineError> {
        let settings = &self.identity.settings;
        self.identity
            .codes
            .issue(
                work.conversation_id,
                "",
                "",
                self.identity.clock.now(),
                chrono::Duration::minutes(settings.code_minutes as i64),
                settings.code_attempts,
            )
            .map_err(anyhow::Error::from)?;
        self.log(work, vec![EventKind::VerificationCodeSent { customer_id: String::new(), to: String::new() }])?;
        self.say(work, "code_sent")?;
        work.awaiting = Some(VERIFICATION_CODE.into());
        Ok(())
    }

    /// The text message that carries a code.
    fn sms_text(&self, code: &str) -> Result<String, EngineError> {
        let minutes = self.identity.settings.code_minutes.to_string();
        let operator = self.settings.operator_name.clone();
        self.replies
            .render("sms_verification_code", &|name| match name {
                "operator_name" => Some(operator.clone()),
                "code" => Some(code.to_string()),
                "code_minutes" => Some(minutes.clone()),
                _ => None,
            })
            .map_err(|error| EngineError::Internal(anyhow::anyhow!(error)))
    }

    /// The customer's answer while a code is expected.
    pub(super) fn on_code_answer(&self, work: &mut Work<'_>, u: &Understanding) -> Result<(), EngineError> {
        let pending = self.identity.codes.pending(work.conversation_id).map_err(anyhow::Error::from)?;
        let claimed = pending.as_ref().map(|code| code.customer_id.clone()).unwrap_or_default();
        let typed_something = u.text.chars().any(|c| c.is_ascii_digit());
        if !typed_something {
            if u.dont_know || u.yes_no == Some(false) {
                // "I don't have that phone": the claim cannot be proven here; try another way.
                return self.withdraw_claim(work, &claimed);
            }
            if u.cancel {
                return self.cancel_all(work);
            }
            let new_request = u
                .confident_intent()
                .filter(|intent| self.book.flow_for_intent(intent).is_some() || *intent == "human_agent");
            if new_request.is_some() && !u.question {
                // "Let me talk to a person" instead of a code: that request goes ahead.
                return self.on_free_message(work, u);
            }
            if u.question && !u.gibberish {
                self.answer_from_knowledge(work, u)?;
                self.say(work, "ask_verification_code")?;
                work.awaiting = Some(VERIFICATION_CODE.into());
                return Ok(());
            }
        }
        let now = self.identity.clock.now();
        let check = self.identity.codes.check(work.conversation_id, &u.text, now).map_err(anyhow::Error::from)?;
        match check {
            CodeCheck::Verified { customer_id } => self.verified(work, &customer_id, Proof::SmsCode),
            CodeCheck::Wrong { customer_id, attempts_left } | CodeCheck::Malformed { customer_id, attempts_left } => {
                let malformed = crate::identity::codes::read_code(&u.text).is_none();
                let reason = if malformed { "not a 6-digit code" } else { "wrong code" };
                if self.failed_proof(work, &customer_id, reason)? {
                    return Ok(());
                }
                if attempts_left == 0 {
                    self.say(work, "code_spent")?;
                    return self.withdraw_claim(work, &customer_id);
                }
                self.say(work, if malformed { "code_malformed" } else { "code_wrong" })?;
                work.awaiting = Some(VERIFICATION_CODE.into());
                Ok(())
            }
            CodeCheck::Expired { customer_id } => {
                self.log(
                    work,
                    vec![EventKind::ProofFailed { customer_id: some(&customer_id), reason: "expired code".into() }],
                )?;
                self.say(work, "code_expired")?;
                if customer_id.is_empty() {
                    return self.start_decoy_proof(work);
                }
                let number = work.state.global(super::identity::CLAIM_NUMBER).map(str::to_string);
                self.start_proof(work, &customer_id, number.as_deref())
            }
            CodeCheck::Spent { customer_id } => {
                if self.failed_proof(work, &customer_id, "code already used")? {
                    return Ok(());
                }
                self.say(work, "code_spent")?;
                self.withdraw_claim(work, &customer_id)
            }
            CodeCheck::NoCode => {
                // Asked for a code that was never sent (a restart lost nothing: codes are stored).
                self.say(work, "code_spent")?;
                self.withdraw_claim(work, &claimed)
            }
        }
    }

    /// Records a failed proof; `true` when it locked the customer (then a person is offered).
    fn failed_proof(&self, work: &mut Work<'_>, customer_id: &str, reason: &str) -> Result<bool, EngineError> {
        self.log(work, vec![EventKind::ProofFailed { customer_id: some(customer_id), reason: reason.into() }])?;
        if customer_id.is_empty() {
            return Ok(false);
        }
        let locked = self.identity.record_failure(customer_id).map_err(anyhow::Error::from)?;
        if locked {
            self.proof_refused(work, Some(customer_id), "self-service verification is locked", "verification_locked")?;
        }
        Ok(locked)
    }

    /// A name and date of birth that match nobody count against the customer with that name.
    pub(super) fn name_and_date_of_birth_failed(
        &self,
        work: &mut Work<'_>,
        full_name: &str,
    ) -> Result<(), EngineError> {
        let named = self.registry.store().customers_by_name(full_name).map_err(anyhow::Error::from)?;
        for customer in named {
            self.log(
                work,
                vec![EventKind::ProofFailed {
                    customer_id: Some(customer.customer_id.to_string()),
                    reason: "name and date of birth do not match".into(),
                }],
            )?;
            self.identity.record_failure(customer.customer_id.as_str()).map_err(anyhow::Error::from)?;
        }
        Ok(())
    }

    /// The claim could not be proven: unbind it and try another way to identify the customer.
    fn withdraw_claim(&self, work: &mut Work<'_>, customer_id: &str) -> Result<(), EngineError> {
        if !customer_id.is_empty() {
            self.log(work, vec![EventKind::ClaimWithdrawn { customer_id: customer_id.to_string() }])?;
        }
        if work.state.stack.is_empty() {
            self.say(work, "verification_failed")?;
            return self.offer_person(work);
        }
        self.drive(work, Step::Start)
    }

    /// The customer proved who they are: bound and verified; the look-up that resolved their
    /// claim is reported now.
    pub(super) fn verified(&self, work: &mut Work<'_>, customer_id: &str, proof: Proof) -> Result<(), EngineError> {
        self.bind_customer(work, customer_id, true, proof.as_str())?;
        let lookup = work.state.globals.get(CLAIM_LOOKUP).and_then(ClaimLookup::from_json);
        if let Some(lookup) = lookup.filter(|lookup| lookup.customer_id == customer_id) {
            self.log(
                work,
                vec![EventKind::ActionDone {
                    action: lookup.action.clone(),
                    args: lookup.args.clone(),
                    result: json!({"customer_id": customer_id}),
                }],
            )?;
            work.actions.push(ActionOut { name: lookup.action, args: lookup.args, status: "done".into() });
            self.log(work, vec![EventKind::SlotCleared { flow: GLOBAL.into(), slot: CLAIM_LOOKUP.into() }])?;
        }
        self.say(work, "verified")?;
        if work.state.stack.is_empty() {
            self.say(work, "anything_else")?;
            return Ok(());
        }
        self.drive(work, Step::Start)
    }

    /// A proof that cannot go ahead: logged, the active flows end, and a person is offered.
    fn proof_refused(
        &self,
        work: &mut Work<'_>,
        customer_id: Option<&str>,
        reason: &str,
        template: &str,
    ) -> Result<(), EngineError> {
        self.log(
            work,
            vec![EventKind::ProofFailed { customer_id: customer_id.map(str::to_string), reason: reason.into() }],
        )?;
        self.end_all(work, EndOutcome::Refused)?;
        self.say(work, template)?;
        self.offer_person(work)
    }

    /// Asks whether the customer wants a person (a yes transfers).
    pub(super) fn offer_person(&self, work: &mut Work<'_>) -> Result<(), EngineError> {
        let token = format!("offer-human-{}-{}", work.conversation_id, work.state.n_messages);
        self.log(
            work,
            vec![EventKind::ConfirmationAsked { action: "transfer_to_human_agents".into(), args: json!({}), token }],
        )?;
        self.say(work, "offer_person")?;
        work.awaiting = Some("confirmation".into());
        work.pending_action = Some(ActionCall { name: "transfer_to_human_agents".into(), args: json!({}) });
        Ok(())
    }

    /// Whether the SIM of `number` was not swapped recently (asked of the network when the
    /// operator has it). A recent swap hands the conversation to a person with the reason; a
    /// network API that does not answer refuses the proof (fail closed).
    pub(super) fn sim_is_safe(
        &self,
        work: &mut Work<'_>,
        customer_id: &str,
        number: &str,
    ) -> Result<bool, EngineError> {
        let Some(network) = &self.identity.network else { return Ok(true) };
        let Some(e164) = self.identity.settings.e164(number) else { return Ok(true) };
        match network.sim_swapped_recently(&e164) {
            Ok(false) => Ok(true),
            Ok(true) => {
                let reason = format!("the SIM of {} was swapped recently", mask_number(number));
                self.log(
                    work,
                    vec![EventKind::ProofFailed { customer_id: some(customer_id), reason: reason.clone() }],
                )?;
                self.hand_off(work, &reason, "sim_swap_handoff")?;
                Ok(false)
            }
            Err(error) => {
                tracing::warn!(%error, "the SIM swap check failed");
                self.proof_refused(
                    work,
                    some(customer_id).as_deref(),
                    "the network API did not answer",
                    "verification_unavailable",
                )?;
                Ok(false)
            }
        }
    }

    /// Before a change or a payment: the SIM of the line it concerns (or the customer's
    /// contact number) must not have been swapped recently.
    pub(super) fn change_is_safe(&self, work: &mut Work<'_>, args: &Value) -> Result<bool, EngineError> {
        if self.identity.network.is_none() {
            return Ok(true);
        }
        let Some(customer_id) = work.state.verified_customer().map(str::to_string) else { return Ok(true) };
        let store = self.registry.store();
        let line_number = args
            .get("line_id")
            .and_then(Value::as_str)
            .and_then(|id| accounts::LineId::parse(id.to_string()).ok())
            .and_then(|id| store.line(&id).ok().flatten())
            .map(|line| line.phone_number.as_str().to_string());
        let number = match line_number {
            Some(number) => number,
            None => match CustomerId::parse(customer_id.clone()).ok().and_then(|id| store.customer(&id).ok().flatten())
            {
                Some(customer) => customer.phone_number.as_str().to_string(),
                None => return Ok(true),
            },
        };
        self.sim_is_safe(work, &customer_id, &number)
    }
}

/// `Some(id)` unless it is empty (a claim that matched nobody).
fn some(customer_id: &str) -> Option<String> {
    (!customer_id.is_empty()).then(|| customer_id.to_string())
}
