//! `switchboard chat`: a conversation in the terminal against the same engine as the server.

use std::io::{BufRead, Write};

use crate::config::Settings;
use engine::conversations::Channel;
use engine::dialogue::{CustomerText, NoTokens};

pub fn run(settings: &Settings) -> anyhow::Result<()> {
    eprintln!("loading models and knowledge...");
    let state = super::serve::state_for(settings.clone())?;
    let engine = state.readiness.engine().expect("loaded above").clone();
    let conversation = state.conversations.create(Channel::Terminal, None)?;
    eprintln!("Switchboard is ready. Type a message; an empty line or Ctrl-D ends the chat.");
    // Without an SMS gateway the demo's texts (verification codes) go to the outbox: shown here.
    let outbox = settings.sms.url.trim().is_empty().then(|| engine::identity::Outbox::in_data_dir(&settings.data_dir));
    let mut n_texts_seen = outbox.as_ref().map_or(0, |outbox| outbox.read().len());
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    loop {
        write!(stdout, "you> ")?;
        stdout.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        let text = match CustomerText::parse(line) {
            Ok(text) => text,
            Err(error) => {
                eprintln!("({error})");
                continue;
            }
        };
        let (turn, times) = engine.respond(&conversation.id, &text, &NoTokens)?;
        writeln!(stdout, "switchboard> {}", turn.reply)?;
        for action in &turn.actions {
            writeln!(stdout, "  [action {} {}: {}]", action.name, action.args, action.status)?;
        }
        for source in &turn.sources {
            writeln!(stdout, "  [source {} > {}]", source.document, source.section)?;
        }
        if let Some(awaiting) = &turn.awaiting {
            writeln!(stdout, "  [awaiting {awaiting}]")?;
        }
        if let Some(outbox) = &outbox {
            let texts = outbox.read();
            for text in texts.iter().skip(n_texts_seen) {
                writeln!(stdout, "  [text message to {}: {}]", text.to, text.text)?;
            }
            n_texts_seen = texts.len();
        }
        tracing::debug!(total_ms = times.total_ms, "turn");
    }
    state.conversations.flush()?;
    Ok(())
}
