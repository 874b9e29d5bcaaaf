//! Channels: thin adapters between the outside world and the one dialogue engine.
//!
//! - [`stream`]: live token streams of conversations (the engine's `TokenSink` publishing to a
//!   per-conversation hub), read by the server-sent events of the REST API.
//! - [`choices`]: the options a turn offers (yes/no, plans, payment methods, lines), shown as
//!   quick replies by the widget and as buttons or lists on WhatsApp.
//! - [`identity`]: the signed host-page identity of the web widget (`data-customer-hash`).
//! - [`whatsapp`]: the WhatsApp Business Cloud API channel: signature check, inbound
//!   notifications stored durably and answered by workers of any instance, replies through the Graph API.
//!
//! Channels do not know actix-web; `http` holds the HTTP shells.

pub mod choices;
pub mod identity;
pub mod stream;
pub mod whatsapp;

use std::sync::Arc;

use crate::config::Settings;
use engine::conversations::ConversationStore;
use engine::dialogue::Engine;

/// How a channel reaches the engine: `None` while models are still loading.
pub type EngineHandle = Arc<dyn Fn() -> Option<Arc<Engine>> + Send + Sync>;

/// The channels' shared state, created once per server (not per HTTP worker).
pub struct Channels {
    pub tokens: Arc<stream::TokenHub>,
    pub whatsapp: Arc<whatsapp::WhatsApp>,
}

impl Channels {
    /// Opens the channels' stores and starts their background tasks (the WhatsApp worker and
    /// the forwarder of agent messages). Must be called inside a tokio runtime.
    pub fn start(
        settings: &Settings,
        db: &storage::Store,
        conversations: &ConversationStore,
        engine: EngineHandle,
    ) -> anyhow::Result<Self> {
        let tokens = Arc::new(stream::TokenHub::default());
        let whatsapp =
            whatsapp::WhatsApp::start(settings.whatsapp.clone(), db, conversations.clone(), engine, tokens.clone())?;
        Ok(Self { tokens, whatsapp })
    }
}
