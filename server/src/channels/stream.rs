//! Live token streams: the engine's [`TokenSink`] publishes generated tokens to a broadcast
//! channel per conversation, which the server-sent events of the REST API subscribe to.
//!
//! A conversation has a channel only while someone listens; tokens of a conversation nobody
//! watches are dropped at once. A slow listener loses tokens (the full turn follows anyway).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use engine::dialogue::TokenSink;

/// Tokens buffered per listener before a slow one starts losing them.
const TOKEN_BUFFER: usize = 512;

/// Per-conversation broadcast channels of generated tokens.
#[derive(Default)]
pub struct TokenHub {
    senders: Mutex<HashMap<String, broadcast::Sender<String>>>,
}

impl TokenHub {
    /// Listens to the tokens of one conversation from now on.
    pub fn subscribe(&self, conversation_id: &str) -> broadcast::Receiver<String> {
        let mut senders = self.senders.lock().expect("token hub lock");
        senders.retain(|_, sender| sender.receiver_count() > 0);
        senders.entry(conversation_id.to_string()).or_insert_with(|| broadcast::channel(TOKEN_BUFFER).0).subscribe()
    }

    /// Sends a token to the listeners of a conversation, if any.
    pub fn publish(&self, conversation_id: &str, token: &str) {
        let mut senders = self.senders.lock().expect("token hub lock");
        let Some(sender) = senders.get(conversation_id) else { return };
        if sender.send(token.to_string()).is_err() {
            senders.remove(conversation_id);
        }
    }

    /// Number of conversations somebody listens to.
    pub fn n_streams(&self) -> usize {
        self.senders.lock().expect("token hub lock").values().filter(|s| s.receiver_count() > 0).count()
    }

    /// A token sink for [`engine::dialogue::Engine::respond`] that publishes here.
    pub fn sink(self: &Arc<Self>) -> HubSink {
        HubSink(self.clone())
    }
}

/// The engine's token sink, publishing to a [`TokenHub`].
pub struct HubSink(Arc<TokenHub>);

impl TokenSink for HubSink {
    fn token(&self, conversation_id: &str, token: &str) {
        self.0.publish(conversation_id, token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_reach_listeners_of_their_conversation_only() {
        let hub = Arc::new(TokenHub::default());
        let mut first = hub.subscribe("a");
        let mut other = hub.subscribe("b");
        let sink = hub.sink();
        sink.token("a", "Hel");
        sink.token("a", "lo");
        assert_eq!(first.try_recv().unwrap(), "Hel");
        assert_eq!(first.try_recv().unwrap(), "lo");
        assert!(other.try_recv().is_err());
    }

    #[test]
    fn channels_go_away_with_their_last_listener() {
        let hub = Arc::new(TokenHub::default());
        let listener = hub.subscribe("a");
        assert_eq!(hub.n_streams(), 1);
        drop(listener);
        hub.publish("a", "nobody hears this");
        assert_eq!(hub.n_streams(), 0);
        assert!(hub.senders.lock().unwrap().is_empty());
        // Publishing to a conversation nobody ever watched is a no-op.
        hub.publish("never", "x");
    }
}
