//! Meta's webhook notification shape (WhatsApp Business Cloud API) and its flattening into
//! jobs: every entry, every change, every message and status, in order.
//!
//! Parsing is lenient about fields we do not use (Meta adds fields over time) and strict
//! about the ones we do: a message without a sender or an id is skipped and logged.

use serde::{Deserialize, Serialize};

/// A webhook notification (`POST /webhooks/whatsapp`).
#[derive(Debug, Clone, Deserialize)]
pub struct Notification {
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub value: ChangeValue,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChangeValue {
    #[serde(default)]
    pub messaging_product: String,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<InboundMessage>,
    #[serde(default)]
    pub statuses: Vec<StatusUpdate>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub display_phone_number: String,
    #[serde(default)]
    pub phone_number_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Contact {
    #[serde(default)]
    pub wa_id: String,
    #[serde(default)]
    pub profile: Option<Profile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub name: String,
}

/// One customer message.
#[derive(Debug, Clone, Deserialize)]
pub struct InboundMessage {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub text: Option<TextBody>,
    #[serde(default)]
    pub interactive: Option<Interactive>,
    /// A quick-reply button of a template message.
    #[serde(default)]
    pub button: Option<TemplateButton>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TextBody {
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Interactive {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub button_reply: Option<Reply>,
    #[serde(default)]
    pub list_reply: Option<Reply>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reply {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TemplateButton {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub payload: String,
}

/// A delivery report of a message we sent.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusUpdate {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub recipient_id: String,
    #[serde(default)]
    pub errors: Vec<StatusError>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub title: String,
}

/// What a customer message carries, as the channel understands it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// Typed text.
    Text { text: String },
    /// A tap on a reply button or a list row we offered.
    Choice { id: String, title: String },
    /// A message type the assistant cannot read (image, sticker, audio, ...).
    Unsupported { message_type: String },
    /// Not a message to answer (a reaction, a system notice).
    Ignored { message_type: String },
}

/// Work for the WhatsApp workers, stored until it is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// A customer message to answer.
    Message { message_id: String, from: String, content: Content },
    /// A delivery report to record.
    Status { message_id: String, status: String, recipient_id: String, errors: Vec<String> },
    /// A human agent wrote in the console: deliver it to the customer.
    AgentMessage { conversation_id: String, seq: u64, text: String },
}

impl Job {
    /// The key that makes a redelivered notification a duplicate.
    pub fn dedupe_key(&self) -> String {
        match self {
            Job::Message { message_id, .. } => format!("m/{message_id}"),
            Job::Status { message_id, status, .. } => format!("s/{message_id}/{status}"),
            Job::AgentMessage { conversation_id, seq, .. } => format!("a/{conversation_id}/{seq}"),
        }
    }
}

/// Longest message id, sender or status we accept (Meta's are far shorter).
const MAX_ID_CHARS: usize = 256;

/// Every message and status of a notification, in order; malformed items are skipped.
pub fn jobs(notification: &Notification) -> Vec<Job> {
    let mut jobs = Vec::new();
    for entry in &notification.entry {
        for change in &entry.changes {
            if change.field != "messages" {
                tracing::debug!(field = %change.field, "whatsapp change of another field ignored");
                continue;
            }
            for message in &change.value.messages {
                match message_job(message) {
                    Some(job) => jobs.push(job),
                    None => {
                        tracing::warn!(message_id = %message.id, "whatsapp message without a valid sender or id skipped")
                    }
                }
            }
            for status in &change.value.statuses {
                if !valid_id(&status.id) || !valid_id(&status.status) || !is_wa_id(&status.recipient_id) {
                    tracing::warn!(message_id = %status.id, "whatsapp status without a valid id or recipient skipped");
                    continue;
                }
                jobs.push(Job::Status {
                    message_id: status.id.clone(),
                    status: status.status.clone(),
                    recipient_id: status.recipient_id.clone(),
                    errors: status
                        .errors
                        .iter()
                        .map(|e| match e.code {
                            Some(code) => format!("{code}: {}", e.title),
                            None => e.title.clone(),
                        })
                        .collect(),
                });
            }
        }
    }
    jobs
}

fn message_job(message: &InboundMessage) -> Option<Job> {
    if !valid_id(&message.id) || !is_wa_id(&message.from) {
        return None;
    }
    let content = match message.kind.as_str() {
        "text" => Content::Text { text: message.text.as_ref().map(|t| t.body.clone()).unwrap_or_default() },
        "interactive" => {
            let interactive = message.interactive.as_ref();
            let reply = interactive.and_then(|i| i.button_reply.as_ref().or(i.list_reply.as_ref()));
            match reply {
                Some(reply) => Content::Choice { id: reply.id.clone(), title: reply.title.clone() },
                None => Content::Unsupported {
                    message_type: format!("interactive {}", interactive.map(|i| i.kind.as_str()).unwrap_or("")),
                },
            }
        }
        "button" => {
            let button = message.button.as_ref();
            Content::Choice {
                id: button.map(|b| b.payload.clone()).unwrap_or_default(),
                title: button.map(|b| b.text.clone()).unwrap_or_default(),
            }
        }
        "reaction" | "system" => Content::Ignored { message_type: message.kind.clone() },
        other => Content::Unsupported { message_type: short(other) },
    };
    Some(Job::Message { message_id: message.id.clone(), from: message.from.clone(), content })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= MAX_ID_CHARS && !id.chars().any(char::is_control)
}

/// A WhatsApp id: the sender's number in international form, digits only.
fn is_wa_id(id: &str) -> bool {
    (5..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

fn short(text: &str) -> String {
    let cleaned: String = text.chars().filter(|c| !c.is_control()).take(40).collect();
    if cleaned.is_empty() { "unknown".into() } else { cleaned }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Vec<Job> {
        jobs(&serde_json::from_str::<Notification>(json).expect("notification parses"))
    }

    /// Meta's sample text message notification.
    const TEXT: &str = r#"{
      "object": "whatsapp_business_account",
      "entry": [{
        "id": "102290129340398",
        "changes": [{
          "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [{
              "from": "16505551234",
              "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
              "timestamp": "1749416383",
              "type": "text",
              "text": {"body": "Does it come in another color?"}
            }]
          },
          "field": "messages"
        }]
      }]
    }"#;

    #[test]
    fn a_text_message_becomes_one_job() {
        let jobs = parse(TEXT);
        assert_eq!(
            jobs,
            vec![Job::Message {
                message_id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=".into(),
                from: "16505551234".into(),
                content: Content::Text { text: "Does it come in another color?".into() },
            }]
        );
    }

    #[test]
    fn button_and_list_replies_are_choices() {
        let json = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
          "messaging_product":"whatsapp",
          "messages":[
            {"context":{"from":"15550783881","id":"wamid.ctx"},"from":"16505551234","id":"wamid.b1","timestamp":"1","type":"interactive",
             "interactive":{"type":"button_reply","button_reply":{"id":"choice:Yes","title":"Yes"}}},
            {"from":"16505551234","id":"wamid.l1","timestamp":"2","type":"interactive",
             "interactive":{"type":"list_reply","list_reply":{"id":"choice:Premium Plan","title":"Premium Plan","description":"15 GB"}}},
            {"from":"16505551234","id":"wamid.t1","timestamp":"3","type":"button","button":{"text":"Talk to us","payload":"talk"}}
          ]}}]}]}"#;
        let jobs = parse(json);
        let contents: Vec<Content> = jobs
            .into_iter()
            .map(|job| match job {
                Job::Message { content, .. } => content,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            contents,
            vec![
                Content::Choice { id: "choice:Yes".into(), title: "Yes".into() },
                Content::Choice { id: "choice:Premium Plan".into(), title: "Premium Plan".into() },
                Content::Choice { id: "talk".into(), title: "Talk to us".into() },
            ]
        );
    }

    #[test]
    fn statuses_stickers_and_reactions() {
        let json = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
          "messaging_product":"whatsapp",
          "statuses":[
            {"id":"wamid.out1","status":"delivered","timestamp":"1","recipient_id":"16505551234",
             "conversation":{"id":"c1","origin":{"type":"service"}},"pricing":{"billable":true,"pricing_model":"CBP","category":"service"}},
            {"id":"wamid.out2","status":"failed","timestamp":"2","recipient_id":"16505551234",
             "errors":[{"code":131047,"title":"Re-engagement message","message":"more than 24 hours"}]}
          ],
          "messages":[
            {"from":"16505551234","id":"wamid.s1","timestamp":"3","type":"sticker",
             "sticker":{"mime_type":"image/webp","sha256":"abc","id":"123","animated":false}},
            {"from":"16505551234","id":"wamid.r1","timestamp":"4","type":"reaction","reaction":{"message_id":"wamid.out1","emoji":"👍"}}
          ]}}]}]}"#;
        let jobs = parse(json);
        assert_eq!(jobs.len(), 4);
        assert!(
            matches!(&jobs[0], Job::Message { content: Content::Unsupported { message_type }, .. } if message_type == "sticker")
        );
        assert!(matches!(&jobs[1], Job::Message { content: Content::Ignored { .. }, .. }));
        assert!(matches!(&jobs[2], Job::Status { status, .. } if status == "delivered"));
        assert!(
            matches!(&jobs[3], Job::Status { errors, .. } if errors == &vec!["131047: Re-engagement message".to_string()])
        );
    }

    #[test]
    fn every_entry_and_change_counts_and_bad_items_are_skipped() {
        let json = r#"{"object":"whatsapp_business_account","entry":[
          {"id":"1","changes":[
            {"field":"messages","value":{"messages":[{"from":"111111","id":"a","type":"text","text":{"body":"one"}},
                                                     {"from":"222222","id":"b","type":"text","text":{"body":"two"}}]}},
            {"field":"account_update","value":{}},
            {"field":"messages","value":{"messages":[{"from":"333333","id":"c","type":"text","text":{"body":"three"}}]}}]},
          {"id":"2","changes":[
            {"field":"messages","value":{"messages":[{"from":"+44 7","id":"d","type":"text","text":{"body":"bad sender"}},
                                                     {"from":"444444","id":"","type":"text","text":{"body":"no id"}},
                                                     {"from":"555555","id":"e","type":"text","text":{"body":"five"}}]}}]}
        ]}"#;
        let ids: Vec<String> = parse(json)
            .into_iter()
            .map(|job| match job {
                Job::Message { message_id, .. } => message_id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["a", "b", "c", "e"]);
    }

    #[test]
    fn dedupe_keys_tell_jobs_apart() {
        let status = |status: &str| Job::Status {
            message_id: "wamid.1".into(),
            status: status.into(),
            recipient_id: "1".into(),
            errors: vec![],
        };
        assert_ne!(status("sent").dedupe_key(), status("read").dedupe_key());
        let message = Job::Message {
            message_id: "wamid.1".into(),
            from: "1".into(),
            content: Content::Text { text: "x".into() },
        };
        assert_eq!(message.dedupe_key(), "m/wamid.1");
    }
}
