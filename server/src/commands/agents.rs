//! `switchboard agents add NAME --role agent|supervisor`: creates a console user, or sets a
//! new password and role for an existing one. The password is read from standard input (the
//! first line), so it never shows in the process list or the shell history.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;

use crate::BadInput;
use crate::config::Settings;
use engine::console::{AgentName, Console, Error, Password, Role};

pub fn add(settings: &Settings, name: &str, role: &str) -> anyhow::Result<()> {
    let bad = |error: Error| anyhow::Error::new(BadInput(error.to_string()));
    let name = AgentName::parse(name).map_err(bad)?;
    let role = Role::parse(role).map_err(bad)?;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password for {name} (shown as you type; pipe it in to hide it): ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|error| match error.kind() {
        // Not text: the input's fault, like a password of the wrong length.
        std::io::ErrorKind::InvalidData => {
            anyhow::Error::new(BadInput("the password on standard input is not UTF-8 text".to_owned()))
        }
        _ => anyhow::Error::new(error).context("reading the password from standard input"),
    })?;
    let raw_password = line.strip_suffix('\n').unwrap_or(&line);
    let raw_password = raw_password.strip_suffix('\r').unwrap_or(raw_password);
    let password = Password::parse(raw_password).map_err(bad)?;

    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    let db = crate::app::open_db(settings)?;
    let console = Console::open(&db, &settings.console).context("opening the console store")?;
    let created = console.agents().add(&name, role, &password).context("saving the agent")?;
    if !created {
        // A new password ends the sessions signed in with the old one.
        console.sessions().end_all_of(name.as_str()).context("ending the old sessions")?;
    }
    db.flush().context("flushing the database")?;
    let what = if created { "created" } else { "updated (password and role)" };
    println!("console {role} {name} {what}");
    Ok(())
}
