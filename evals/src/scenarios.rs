//! Scenario files and the harness that plays them (`switchboard eval scenarios DIR`).
//!
//! A scenario (`evals/scenarios/*.yaml`, format in `docs/scenarios.md`) is one customer with a
//! goal: an opening message, the facts the customer gives when asked, their decisions, an
//! optional simulated phone, and what must be true at the end. The harness plays the customer
//! against an [`Assistant`] (the server implements it with the real dialogue engine; this
//! crate does not depend on the server), then checks the actions, the accounts, the replies
//! and the phone.
//!
//! The simulated customer never reads the assistant's wording: it answers what the turn's
//! `awaiting` names (a slot, `confirmation`, or `device:<tool>`), says "I don't know" to
//! anything else, asks "What else do I need to do?" once when nothing is asked, and ends the
//! conversation the second time, after a handoff, or after `max_turns` replies.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Replies the conversation may have when a scenario does not set `max_turns`.
pub const DEFAULT_MAX_TURNS: usize = 20;
/// Largest `max_turns` a scenario may set.
pub const MAX_MAX_TURNS: usize = 200;
/// Largest scenario file read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What the simulated customer says when they have no answer.
pub const DONT_KNOW: &str = "I don't know";
/// What the simulated customer says, once, when the assistant asks nothing.
pub const WHAT_ELSE: &str = "What else do I need to do?";
/// What the simulated customer says after doing something on their phone.
pub const DONE: &str = "Done.";

/// The tau2 telecom user tools that look at the phone (`awaiting: device:<check>`).
pub const DEVICE_CHECKS: &[&str] = &[
    "check_status_bar",
    "check_network_status",
    "check_network_mode_preference",
    "check_sim_status",
    "check_data_restriction_status",
    "check_apn_settings",
    "check_wifi_status",
    "check_wifi_calling_status",
    "check_vpn_status",
    "check_installed_apps",
    "check_app_status",
    "check_app_permissions",
    "run_speed_test",
    "can_send_mms",
];

/// The tau2 telecom user tools that change the phone (`awaiting: device:<action>`).
pub const DEVICE_ACTIONS: &[&str] = &[
    "toggle_airplane_mode",
    "toggle_data",
    "toggle_roaming",
    "toggle_data_saver_mode",
    "reseat_sim_card",
    "set_network_mode_preference",
    "set_apn_settings",
    "reset_apn_settings",
    "toggle_wifi",
    "toggle_wifi_calling",
    "connect_vpn",
    "disconnect_vpn",
    "grant_app_permission",
    "reboot_device",
];

/// Everything that can be wrong with scenario files.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {why}")]
    Parse { path: PathBuf, why: String },
    #[error("{path}: {field}: {why}")]
    Invalid { path: PathBuf, field: String, why: String },
    #[error("{path}: no scenario files (*.yaml, *.yml)")]
    NoScenarios { path: PathBuf },
    #[error("scenario name {name:?} is used twice: {first} and {second}")]
    DuplicateName { name: String, first: PathBuf, second: PathBuf },
}

pub type Result<T, E = ScenarioError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------------
// The format

/// One scenario, checked and with its accounts file resolved.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// The accounts file (tau2 `db.toml` shape), resolved next to the scenario file first,
    /// then from the current directory.
    pub accounts: PathBuf,
    pub opening: String,
    /// Facts the customer gives when asked, by slot name; `null`: "I don't know".
    pub customer: BTreeMap<String, Value>,
    /// Decisions that answer slots like facts do (`confirmation` is kept apart).
    pub decisions: BTreeMap<String, Value>,
    /// The answer to every confirmation, or by pending action name.
    pub confirmation: Option<Confirmation>,
    pub max_turns: usize,
    /// The business date the accounts are checked against (`YYYY-MM-DD`); an extension of the
    /// format, for scenarios written for another date than the accounts file's.
    pub today: Option<String>,
    pub device: Option<Device>,
    /// Who the customer is and what they can prove (`docs/scenarios.md`, "Identity").
    pub identity: IdentitySetup,
    pub expect: Expect,
}

/// The channel a scenario's conversation comes in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScenarioChannel {
    #[default]
    Web,
    /// The customer's `phone_number` is the WhatsApp sender, proven by Meta.
    Whatsapp,
}

/// What the customer types when a code is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeAnswer {
    /// Exactly this text.
    Literal(String),
    /// The newest code texted to one of the customer's own numbers.
    Latest,
}

/// The operator's page opened the conversation with a signed identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetIdentity {
    pub customer_id: String,
    /// Negative: already expired.
    pub expires_in_minutes: i64,
    /// The signature is wrong.
    pub forged: bool,
}

/// The identity part of a scenario.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdentitySetup {
    pub channel: ScenarioChannel,
    /// False: the customer reads no text sent to any line.
    pub phone_access: bool,
    /// What to type when a code is asked for, in order; then `Latest`.
    pub verification_codes: Vec<CodeAnswer>,
    /// The clock moves this far before each code is typed.
    pub code_delay_minutes: Option<i64>,
    pub widget_identity: Option<WidgetIdentity>,
    /// Hours since each number's SIM was swapped (the network APIs report it).
    pub sim_swaps: BTreeMap<String, f64>,
    /// Conversations played in a row on the same accounts and identity records.
    pub conversations: usize,
}

/// `decisions.confirmation`: `yes`/`no` for every confirmation, or a map by action name.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirmation {
    Always(bool),
    ByAction(BTreeMap<String, bool>),
}

/// The simulated phone.
#[derive(Debug, Clone, Default)]
pub struct Device {
    pub state: BTreeMap<String, Value>,
    /// What each check reports: the first rule whose `when` holds.
    pub checks: BTreeMap<String, Vec<CheckRule>>,
    /// What each action changes: the first rule whose `when` holds.
    pub actions: BTreeMap<String, Vec<ActionRule>>,
}

/// A condition on the accounts (dotted paths) and the phone state; empty holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Condition {
    pub accounts: BTreeMap<String, Value>,
    pub state: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckRule {
    pub when: Condition,
    /// The answer, with `{field}` filled from the phone state.
    pub say: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActionRule {
    pub when: Condition,
    pub set: BTreeMap<String, Value>,
}

/// An action by name, with arguments that must be a subset of those it ran with.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionPattern {
    pub name: String,
    pub args: Map<String, Value>,
}

/// What must be true at the end; `None` (or empty lists) is not checked.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub actions: Vec<ActionPattern>,
    pub forbidden_actions: Vec<ActionPattern>,
    pub final_state: BTreeMap<String, Value>,
    pub reply_mentions: Vec<String>,
    pub reply_excludes: Vec<String>,
    pub handoff: Option<bool>,
    pub device_state: BTreeMap<String, Value>,
    pub device_actions: Vec<String>,
    /// `anonymous`, `claimed` or `verified` at the end of the last conversation.
    pub assurance: Option<String>,
    pub codes_sent_to: Vec<String>,
    pub codes_not_sent_to: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    accounts: String,
    opening: String,
    #[serde(default)]
    customer: Option<Map<String, Value>>,
    #[serde(default)]
    decisions: Option<Map<String, Value>>,
    #[serde(default)]
    max_turns: Option<i64>,
    #[serde(default)]
    today: Option<String>,
    #[serde(default)]
    device: Option<RawDevice>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    code_delay_minutes: Option<i64>,
    #[serde(default)]
    widget_identity: Option<RawWidgetIdentity>,
    #[serde(default)]
    network: Option<RawNetwork>,
    #[serde(default)]
    conversations: Option<i64>,
    #[serde(default)]
    expect: Option<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWidgetIdentity {
    customer_id: String,
    #[serde(default)]
    expires_in_minutes: Option<i64>,
    #[serde(default)]
    forged: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    sim_swaps: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    #[serde(default)]
    state: Option<Map<String, Value>>,
    #[serde(default)]
    checks: Option<Map<String, Value>>,
    #[serde(default)]
    actions: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    actions: Option<Vec<Value>>,
    #[serde(default)]
    forbidden_actions: Option<Vec<Value>>,
    #[serde(default)]
    final_state: Option<Map<String, Value>>,
    #[serde(default)]
    reply_mentions: Option<Vec<String>>,
    #[serde(default)]
    reply_excludes: Option<Vec<String>>,
    #[serde(default)]
    handoff: Option<bool>,
    #[serde(default)]
    device_state: Option<Map<String, Value>>,
    #[serde(default)]
    device_actions: Option<Vec<String>>,
    #[serde(default)]
    assurance: Option<String>,
    #[serde(default)]
    codes_sent_to: Option<Vec<String>>,
    #[serde(default)]
    codes_not_sent_to: Option<Vec<String>>,
}

/// Most conversations one scenario may play in a row.
pub const MAX_CONVERSATIONS: usize = 10;

/// The identity keys of a scenario as written.
struct RawIdentity {
    channel: Option<String>,
    code_delay_minutes: Option<i64>,
    widget_identity: Option<RawWidgetIdentity>,
    network: Option<RawNetwork>,
    conversations: Option<i64>,
}

fn parse_identity(
    raw: RawIdentity,
    customer: &BTreeMap<String, Value>,
    mut identity_facts: BTreeMap<String, Value>,
    invalid: &Invalid<'_>,
) -> Result<IdentitySetup> {
    let RawIdentity { channel: raw_channel, code_delay_minutes, widget_identity: widget, network, conversations } = raw;
    let channel = match raw_channel.as_deref().map(str::trim) {
        None | Some("web") => ScenarioChannel::Web,
        Some("whatsapp") => ScenarioChannel::Whatsapp,
        Some(other) => return Err(invalid("channel", format!("{other:?} is not web or whatsapp"))),
    };
    if channel == ScenarioChannel::Whatsapp && !customer.get("phone_number").is_some_and(Value::is_string) {
        return Err(invalid("customer.phone_number", "a whatsapp scenario needs the sender's number".into()));
    }
    let phone_access = match identity_facts.remove("phone_access") {
        None => true,
        Some(Value::Bool(access)) => access,
        Some(_) => return Err(invalid("customer.phone_access", "must be true or false".into())),
    };
    let verification_codes = match identity_facts.remove("verification_code") {
        None => Vec::new(),
        Some(value) => {
            let items = match value {
                Value::Array(items) => items,
                single => vec![single],
            };
            let mut codes = Vec::new();
            for item in items {
                codes.push(match item {
                    Value::String(text) if text.trim() == "latest" => CodeAnswer::Latest,
                    Value::String(text) if !text.trim().is_empty() => CodeAnswer::Literal(text),
                    Value::Number(number) => CodeAnswer::Literal(number.to_string()),
                    _ => {
                        return Err(invalid(
                            "customer.verification_code",
                            "each entry is a text to type or `latest`".into(),
                        ));
                    }
                });
            }
            codes
        }
    };
    if code_delay_minutes.is_some_and(|minutes| !(0..=10_000).contains(&minutes)) {
        return Err(invalid("code_delay_minutes", "must be 0 to 10000".into()));
    }
    let widget_identity = match widget {
        None => None,
        Some(raw) => {
            if channel != ScenarioChannel::Web {
                return Err(invalid("widget_identity", "only the web channel has a widget".into()));
            }
            if raw.customer_id.trim().is_empty() {
                return Err(invalid("widget_identity.customer_id", "must not be empty".into()));
            }
            Some(WidgetIdentity {
                customer_id: raw.customer_id.trim().to_string(),
                expires_in_minutes: raw.expires_in_minutes.unwrap_or(30),
                forged: raw.forged,
            })
        }
    };
    let mut sim_swaps = BTreeMap::new();
    for (number, hours) in network.and_then(|network| network.sim_swaps).unwrap_or_default() {
        let hours = hours
            .as_f64()
            .filter(|hours| *hours >= 0.0)
            .ok_or_else(|| invalid(&format!("network.sim_swaps.{number}"), "must be a number of hours".into()))?;
        sim_swaps.insert(number, hours);
    }
    let conversations = match conversations {
        None => 1,
        Some(n) if n >= 1 && n <= MAX_CONVERSATIONS as i64 => n as usize,
        Some(n) => return Err(invalid("conversations", format!("{n} is not 1 to {MAX_CONVERSATIONS}"))),
    };
    Ok(IdentitySetup {
        channel,
        phone_access,
        verification_codes,
        code_delay_minutes,
        widget_identity,
        sim_swaps,
        conversations,
    })
}

/// Reads every `*.yaml`/`*.yml` file of the given folders (and any files given directly),
/// in name order; scenario names must be unique.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Scenario>> {
    let current_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut scenarios: Vec<Scenario> = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            let mut files = Vec::new();
            let entries =
                std::fs::read_dir(path).map_err(|source| ScenarioError::Read { path: path.clone(), source })?;
            for entry in entries {
                let entry = entry.map_err(|source| ScenarioError::Read { path: path.clone(), source })?;
                let file = entry.path();
                let is_yaml = file.extension().and_then(|e| e.to_str()).is_some_and(|e| e == "yaml" || e == "yml");
                if is_yaml && file.is_file() {
                    files.push(file);
                }
            }
            files.sort();
            if files.is_empty() {
                return Err(ScenarioError::NoScenarios { path: path.clone() });
            }
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            let scenario = load_file_from(&file, &current_dir)?;
            if let Some(first) = scenarios.iter().find(|s| s.name == scenario.name) {
                return Err(ScenarioError::DuplicateName {
                    name: scenario.name,
                    first: first.file.clone(),
                    second: file,
                });
            }
            scenarios.push(scenario);
        }
    }
    Ok(scenarios)
}

/// Reads and checks one scenario file.
pub fn load_file(path: &Path) -> Result<Scenario> {
    let current_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    load_file_from(path, &current_dir)
}

fn load_file_from(path: &Path, current_dir: &Path) -> Result<Scenario> {
    let metadata =
        std::fs::metadata(path).map_err(|source| ScenarioError::Read { path: path.to_path_buf(), source })?;
    if !metadata.is_file() {
        return Err(ScenarioError::Parse { path: path.to_path_buf(), why: "not a file".into() });
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(ScenarioError::Parse {
            path: path.to_path_buf(),
            why: format!("larger than {} kB", MAX_FILE_BYTES / 1024),
        });
    }
    let text =
        std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.to_path_buf(), source })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_scenario(path, &text, base, current_dir)
}

/// Parses scenario text; `accounts` is resolved against `base` (the file's folder), then
/// `current_dir`.
pub fn parse_scenario(path: &Path, text: &str, base: &Path, current_dir: &Path) -> Result<Scenario> {
    if text.trim().is_empty() {
        return Err(ScenarioError::Parse { path: path.to_path_buf(), why: "the file is empty".into() });
    }
    let raw: RawScenario = serde_yaml::from_str(text)
        .map_err(|error| ScenarioError::Parse { path: path.to_path_buf(), why: error.to_string() })?;
    let invalid =
        |field: &str, why: String| ScenarioError::Invalid { path: path.to_path_buf(), field: field.to_string(), why };

    let name = raw.name.trim().to_string();
    if name.is_empty() {
        return Err(invalid("name", "must not be empty".into()));
    }
    let opening = raw.opening.trim().to_string();
    if opening.is_empty() {
        return Err(invalid("opening", "must not be empty".into()));
    }
    let accounts = resolve_accounts(&raw.accounts, base, current_dir).map_err(|why| invalid("accounts", why))?;

    let mut customer = BTreeMap::new();
    let mut identity_facts = BTreeMap::new();
    for (slot, value) in raw.customer.unwrap_or_default() {
        if matches!(slot.as_str(), "phone_access" | "verification_code") {
            identity_facts.insert(slot, value);
            continue;
        }
        check_answer(&value).map_err(|why| invalid(&format!("customer.{slot}"), why))?;
        customer.insert(slot, value);
    }
    let mut decisions = BTreeMap::new();
    let mut confirmation = None;
    for (slot, value) in raw.decisions.unwrap_or_default() {
        if slot == "confirmation" {
            confirmation = Some(parse_confirmation(&value).map_err(|why| invalid("decisions.confirmation", why))?);
            continue;
        }
        check_answer(&value).map_err(|why| invalid(&format!("decisions.{slot}"), why))?;
        decisions.insert(slot, value);
    }

    let max_turns = match raw.max_turns {
        None => DEFAULT_MAX_TURNS,
        Some(n) if n >= 1 && n <= MAX_MAX_TURNS as i64 => n as usize,
        Some(n) => return Err(invalid("max_turns", format!("must be between 1 and {MAX_MAX_TURNS}, not {n}"))),
    };
    let today = match raw.today {
        None => None,
        Some(date) if is_date(date.trim()) => Some(date.trim().to_string()),
        Some(date) => return Err(invalid("today", format!("must be a date YYYY-MM-DD, not {date:?}"))),
    };

    let device = raw.device.map(|raw| parse_device(raw, &invalid)).transpose()?;
    let raw_identity = RawIdentity {
        channel: raw.channel,
        code_delay_minutes: raw.code_delay_minutes,
        widget_identity: raw.widget_identity,
        network: raw.network,
        conversations: raw.conversations,
    };
    let identity = parse_identity(raw_identity, &customer, identity_facts, &invalid)?;
    let expect = parse_expect(raw.expect, device.as_ref(), &invalid)?;

    Ok(Scenario {
        name,
        file: path.to_path_buf(),
        accounts,
        opening,
        customer,
        decisions,
        confirmation,
        max_turns,
        today,
        device,
        identity,
        expect,
    })
}

fn resolve_accounts(written: &str, base: &Path, current_dir: &Path) -> std::result::Result<PathBuf, String> {
    let written = written.trim();
    if written.is_empty() {
        return Err("must name an accounts file".into());
    }
    let path = Path::new(written);
    if path.is_absolute() {
        return if path.is_file() { Ok(path.to_path_buf()) } else { Err(format!("{written} is not a file")) };
    }
    for candidate in [base.join(path), current_dir.join(path)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "{written} was found neither next to the scenario ({}) nor in the current directory ({})",
        base.display(),
        current_dir.display()
    ))
}

fn check_answer(value: &Value) -> std::result::Result<(), String> {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        Value::String(text) if text.trim().is_empty() => Err("an empty answer; write null for \"I don't know\"".into()),
        Value::String(_) => Ok(()),
        Value::Array(_) | Value::Object(_) => Err("must be a single value (text, number, true/false or null)".into()),
    }
}

fn parse_yes_no(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(answer) => Some(*answer),
        Value::String(text) => match text.trim().to_lowercase().as_str() {
            "yes" | "y" | "true" => Some(true),
            "no" | "n" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn parse_confirmation(value: &Value) -> std::result::Result<Confirmation, String> {
    if let Some(answer) = parse_yes_no(value) {
        return Ok(Confirmation::Always(answer));
    }
    let Value::Object(map) = value else {
        return Err("must be yes, no, or a map from action name to yes/no".into());
    };
    let mut by_action = BTreeMap::new();
    for (action, answer) in map {
        let answer = parse_yes_no(answer).ok_or_else(|| format!("{action}: must be yes or no"))?;
        by_action.insert(action.clone(), answer);
    }
    Ok(Confirmation::ByAction(by_action))
}

fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| text.get(range).and_then(|part| part.parse::<u32>().ok());
    match (number(0..4), number(5..7), number(8..10)) {
        (Some(_), Some(month), Some(day)) => (1..=12).contains(&month) && (1..=31).contains(&day),
        _ => false,
    }
}

type Invalid<'a> = dyn Fn(&str, String) -> ScenarioError + 'a;

fn parse_device(raw: RawDevice, invalid: &Invalid<'_>) -> Result<Device> {
    let mut device = Device::default();
    for (field, value) in raw.state.unwrap_or_default() {
        check_state_value(&value).map_err(|why| invalid(&format!("device.state.{field}"), why))?;
        device.state.insert(field, value);
    }
    for (name, value) in raw.actions.unwrap_or_default() {
        let field = format!("device.actions.{name}");
        if !DEVICE_ACTIONS.contains(&name.as_str()) {
            return Err(invalid(&field, unknown_tool(&name, DEVICE_ACTIONS)));
        }
        let rules = match value {
            Value::Object(set) => {
                vec![ActionRule { when: Condition::default(), set: parse_set(set, &field, invalid)? }]
            }
            Value::Array(items) => {
                let mut rules = Vec::new();
                for (idx, item) in items.into_iter().enumerate() {
                    let field = format!("{field}[{idx}]");
                    let Value::Object(mut entry) = item else {
                        return Err(invalid(&field, "must be a map {when, set}".into()));
                    };
                    let when = parse_condition(entry.remove("when"), &field, invalid)?;
                    let set = match entry.remove("set") {
                        Some(Value::Object(set)) => parse_set(set, &format!("{field}.set"), invalid)?,
                        Some(Value::Null) | None => BTreeMap::new(),
                        Some(_) => {
                            return Err(invalid(&format!("{field}.set"), "must be a map of phone fields".into()));
                        }
                    };
                    if let Some(unknown) = entry.keys().next() {
                        return Err(invalid(&field, format!("unknown key {unknown:?} (expected when, set)")));
                    }
                    rules.push(ActionRule { when, set });
                }
                rules
            }
            Value::Null => Vec::new(),
            _ => return Err(invalid(&field, "must be a map of phone fields or a list of {when, set}".into())),
        };
        device.actions.insert(name, rules);
    }
    let known_fields: Vec<String> = device
        .state
        .keys()
        .cloned()
        .chain(device.actions.values().flatten().flat_map(|rule| rule.set.keys().cloned()))
        .collect();
    for (name, value) in raw.checks.unwrap_or_default() {
        let field = format!("device.checks.{name}");
        if !DEVICE_CHECKS.contains(&name.as_str()) {
            return Err(invalid(&field, unknown_tool(&name, DEVICE_CHECKS)));
        }
        let rules = match value {
            Value::String(say) => vec![CheckRule { when: Condition::default(), say }],
            Value::Array(items) => {
                let mut rules = Vec::new();
                for (idx, item) in items.into_iter().enumerate() {
                    let field = format!("{field}[{idx}]");
                    let Value::Object(mut entry) = item else {
                        return Err(invalid(&field, "must be a map {when, say}".into()));
                    };
                    let when = parse_condition(entry.remove("when"), &field, invalid)?;
                    let say = match entry.remove("say") {
                        Some(Value::String(say)) => say,
                        _ => {
                            return Err(invalid(
                                &format!("{field}.say"),
                                "must be the text the customer reports".into(),
                            ));
                        }
                    };
                    if let Some(unknown) = entry.keys().next() {
                        return Err(invalid(&field, format!("unknown key {unknown:?} (expected when, say)")));
                    }
                    rules.push(CheckRule { when, say });
                }
                rules
            }
            _ => return Err(invalid(&field, "must be a text or a list of {when, say}".into())),
        };
        for rule in &rules {
            if rule.say.trim().is_empty() {
                return Err(invalid(&field, "the report must not be empty".into()));
            }
            for placeholder in placeholders(&rule.say) {
                if !known_fields.contains(&placeholder) {
                    return Err(invalid(
                        &field,
                        format!("{{{placeholder}}} is not a phone field (device.state or set by an action)"),
                    ));
                }
            }
            for state_field in rule.when.state.keys() {
                if !known_fields.iter().any(|known| known == state_field) {
                    return Err(invalid(&format!("{field}.when.state.{state_field}"), "is not a phone field".into()));
                }
            }
        }
        device.checks.insert(name, rules);
    }
    for (name, rules) in &device.actions {
        for rule in rules {
            for state_field in rule.when.state.keys() {
                if !known_fields.iter().any(|known| known == state_field) {
                    return Err(invalid(
                        &format!("device.actions.{name}.when.state.{state_field}"),
                        "is not a phone field".into(),
                    ));
                }
            }
        }
    }
    Ok(device)
}

fn unknown_tool(name: &str, known: &[&str]) -> String {
    format!("{name:?} is not a tau2 telecom user tool of this kind (known: {})", known.join(", "))
}

fn check_state_value(value: &Value) -> std::result::Result<(), String> {
    match value {
        Value::Array(_) | Value::Object(_) => Err("must be a single value (text, number, true/false or null)".into()),
        _ => Ok(()),
    }
}

fn parse_set(set: Map<String, Value>, field: &str, invalid: &Invalid<'_>) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for (name, value) in set {
        check_state_value(&value).map_err(|why| invalid(&format!("{field}.{name}"), why))?;
        out.insert(name, value);
    }
    Ok(out)
}

fn parse_condition(value: Option<Value>, field: &str, invalid: &Invalid<'_>) -> Result<Condition> {
    let field = format!("{field}.when");
    let mut condition = Condition::default();
    let map = match value {
        None | Some(Value::Null) => return Ok(condition),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(invalid(&field, "must be a map {accounts, state}".into())),
    };
    for (key, value) in map {
        let Value::Object(entries) = value else {
            return Err(invalid(&format!("{field}.{key}"), "must be a map".into()));
        };
        match key.as_str() {
            "accounts" => {
                for (path, _) in entries.iter() {
                    check_dotted_path(path).map_err(|why| invalid(&format!("{field}.accounts.{path}"), why))?;
                }
                condition.accounts = entries.into_iter().collect();
            }
            "state" => condition.state = entries.into_iter().collect(),
            other => return Err(invalid(&field, format!("unknown key {other:?} (expected accounts, state)"))),
        }
    }
    Ok(condition)
}

fn check_dotted_path(path: &str) -> std::result::Result<(), String> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.len() < 2 || segments.iter().any(|segment| segment.trim().is_empty()) {
        return Err("must be a dotted path like bills.B1005.status".into());
    }
    Ok(())
}

fn parse_action_pattern(value: Value, field: &str, invalid: &Invalid<'_>) -> Result<ActionPattern> {
    match value {
        Value::String(name) if !name.trim().is_empty() => {
            Ok(ActionPattern { name: name.trim().to_string(), args: Map::new() })
        }
        Value::Object(mut map) => {
            let name = match map.remove("name") {
                Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_string(),
                _ => return Err(invalid(&format!("{field}.name"), "must be an action name".into())),
            };
            let args = match map.remove("args") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(args)) => args,
                Some(_) => return Err(invalid(&format!("{field}.args"), "must be a map of arguments".into())),
            };
            if let Some(unknown) = map.keys().next() {
                return Err(invalid(field, format!("unknown key {unknown:?} (expected name, args)")));
            }
            Ok(ActionPattern { name, args })
        }
        _ => Err(invalid(field, "must be an action name or {name, args}".into())),
    }
}

fn parse_expect(raw: Option<RawExpect>, device: Option<&Device>, invalid: &Invalid<'_>) -> Result<Expect> {
    let Some(raw) = raw else { return Ok(Expect::default()) };
    let mut expect = Expect::default();
    for (idx, value) in raw.actions.unwrap_or_default().into_iter().enumerate() {
        expect.actions.push(parse_action_pattern(value, &format!("expect.actions[{idx}]"), invalid)?);
    }
    for (idx, value) in raw.forbidden_actions.unwrap_or_default().into_iter().enumerate() {
        expect.forbidden_actions.push(parse_action_pattern(
            value,
            &format!("expect.forbidden_actions[{idx}]"),
            invalid,
        )?);
    }
    for (path, value) in raw.final_state.unwrap_or_default() {
        check_dotted_path(&path).map_err(|why| invalid(&format!("expect.final_state.{path}"), why))?;
        expect.final_state.insert(path, value);
    }
    for (list, field, out) in [
        (raw.reply_mentions, "expect.reply_mentions", &mut expect.reply_mentions),
        (raw.reply_excludes, "expect.reply_excludes", &mut expect.reply_excludes),
    ] {
        for (idx, text) in list.unwrap_or_default().into_iter().enumerate() {
            if text.trim().is_empty() {
                return Err(invalid(&format!("{field}[{idx}]"), "must not be empty".into()));
            }
            out.push(text);
        }
    }
    expect.handoff = raw.handoff;
    if let Some(state) = raw.device_state {
        if device.is_none() {
            return Err(invalid("expect.device_state", "needs a device (the scenario has no device:)".into()));
        }
        for (field, value) in state {
            check_state_value(&value).map_err(|why| invalid(&format!("expect.device_state.{field}"), why))?;
            expect.device_state.insert(field, value);
        }
    }
    for (idx, name) in raw.device_actions.unwrap_or_default().into_iter().enumerate() {
        if !DEVICE_ACTIONS.contains(&name.as_str()) {
            return Err(invalid(&format!("expect.device_actions[{idx}]"), unknown_tool(&name, DEVICE_ACTIONS)));
        }
        expect.device_actions.push(name);
    }
    if let Some(level) = raw.assurance {
        let level = level.trim().to_string();
        if !matches!(level.as_str(), "anonymous" | "claimed" | "verified") {
            return Err(invalid("expect.assurance", format!("{level:?} is not anonymous, claimed or verified")));
        }
        expect.assurance = Some(level);
    }
    for (list, field, out) in [
        (raw.codes_sent_to, "expect.codes_sent_to", &mut expect.codes_sent_to),
        (raw.codes_not_sent_to, "expect.codes_not_sent_to", &mut expect.codes_not_sent_to),
    ] {
        for (idx, number) in list.unwrap_or_default().into_iter().enumerate() {
            if !number.chars().any(|c| c.is_ascii_digit()) {
                return Err(invalid(&format!("{field}[{idx}]"), "must be a phone number".into()));
            }
            out.push(number);
        }
    }
    Ok(expect)
}

/// The `{field}` names in a check's text.
fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    out.push(name.to_string());
                }
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The assistant under test

/// An error from the assistant under test.
pub type AssistantError = Box<dyn std::error::Error + Send + Sync>;

/// What the harness needs from an assistant: a fresh session per scenario over a fresh copy of
/// its accounts, one reply per customer message, and reads of the accounts by dotted path.
pub trait Assistant {
    type Session;
    /// Starts a conversation over a fresh copy of `accounts_file`.
    fn start(&self, scenario: &Scenario, accounts_file: &Path) -> Result<Self::Session, AssistantError>;
    /// Answers one customer message.
    fn respond(&self, session: &mut Self::Session, text: &str) -> Result<TurnView, AssistantError>;
    /// Reads the session's accounts at a dotted path (`bills.B1005.status`); `None` when absent.
    fn read_path(&self, session: &Self::Session, path: &str) -> Result<Option<Value>, AssistantError>;

    /// The newest verification code texted to a number of the account the customer holds
    /// (by their phone number, customer id, or full name with date of birth), if any.
    fn latest_code(
        &self,
        _session: &Self::Session,
        _customer: &BTreeMap<String, Value>,
    ) -> Result<Option<String>, AssistantError> {
        Ok(None)
    }

    /// Whether any text went to `number`.
    fn texted(&self, _session: &Self::Session, _number: &str) -> Result<bool, AssistantError> {
        Ok(false)
    }

    /// Moves the session's clock forward.
    fn advance_clock(&self, _session: &mut Self::Session, _minutes: i64) -> Result<(), AssistantError> {
        Ok(())
    }

    /// Starts the scenario's next conversation in the same session (same accounts, same
    /// records of proofs).
    fn next_conversation(&self, _session: &mut Self::Session, _scenario: &Scenario) -> Result<(), AssistantError> {
        Err("this assistant plays one conversation per scenario".into())
    }

    /// The current conversation's assurance level (`anonymous`, `claimed`, `verified`).
    fn assurance(&self, _session: &Self::Session) -> Result<Option<String>, AssistantError> {
        Ok(None)
    }
}

/// One reply as the harness sees it (the fields of the API's turn that it uses).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnView {
    pub reply: String,
    pub awaiting: Option<String>,
    pub pending_action: Option<PendingAction>,
    pub actions: Vec<ActionRun>,
    pub handoff: bool,
    /// What the assistant understood (intent name and confidence), shown in transcripts only.
    pub intent: Option<(String, f32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PendingAction {
    pub name: String,
    pub args: Value,
}

/// An account action run during a turn: `status` is `done` when it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRun {
    pub name: String,
    pub args: Value,
    pub status: String,
}

impl ActionRun {
    pub fn ran(&self) -> bool {
        self.status.eq_ignore_ascii_case("done")
    }
}

// ---------------------------------------------------------------------------------------------
// Playing a scenario

/// Why a conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The assistant asked nothing twice: the customer had nothing more to say.
    NothingMoreToSay,
    /// The assistant transferred the customer to a human.
    Handoff,
    /// `max_turns` replies.
    MaxTurns,
    /// The assistant failed (an error, not a reply).
    AssistantError,
}

impl EndReason {
    pub fn describe(self) -> &'static str {
        match self {
            EndReason::NothingMoreToSay => "the customer had nothing more to ask",
            EndReason::Handoff => "handed off to a human",
            EndReason::MaxTurns => "max_turns reached",
            EndReason::AssistantError => "the assistant failed",
        }
    }
}

/// One customer message and the reply to it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub customer: String,
    /// Why the customer said that (e.g. "no fact for slot line"), for the transcript.
    pub customer_note: Option<String>,
    /// What the customer did on the phone before saying it.
    pub phone_note: Option<String>,
    pub turn: TurnView,
}

/// The outcome of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    pub file: PathBuf,
    pub passed: bool,
    /// One line per failed expectation (empty when passed).
    pub failures: Vec<String>,
    pub exchanges: Vec<Exchange>,
    pub end: EndReason,
    pub final_device_state: BTreeMap<String, Value>,
    pub seconds: f64,
}

impl ScenarioResult {
    /// The failures in one line, `None` when the scenario passed.
    pub fn why(&self) -> Option<String> {
        if self.failures.is_empty() {
            return None;
        }
        let mut why = self.failures.join("; ");
        if self.end == EndReason::MaxTurns {
            write!(why, " (the conversation was stopped after {} replies: max_turns)", self.exchanges.len()).ok();
        }
        Some(why)
    }

    /// A readable transcript: every message, reply, awaited answer, action and phone change.
    pub fn transcript(&self) -> String {
        let mut out = String::new();
        let verdict = if self.passed { "passed" } else { "FAILED" };
        writeln!(
            out,
            "=== {} ({}): {verdict}, {} replies, {}, {:.2} s",
            self.name,
            self.file.display(),
            self.exchanges.len(),
            self.end.describe(),
            self.seconds
        )
        .ok();
        if let Some(why) = self.why() {
            writeln!(out, "why: {why}").ok();
        }
        for (idx, exchange) in self.exchanges.iter().enumerate() {
            if let Some(note) = &exchange.phone_note {
                writeln!(out, "     (phone: {note})").ok();
            }
            let note = exchange.customer_note.as_deref().map(|note| format!("   ({note})")).unwrap_or_default();
            writeln!(out, "{:>3} customer: {}{note}", idx + 1, exchange.customer).ok();
            writeln!(out, "    assistant: {}", exchange.turn.reply).ok();
            for action in &exchange.turn.actions {
                writeln!(out, "               action {} {} -> {}", action.name, compact(&action.args), action.status)
                    .ok();
            }
            let mut tags = Vec::new();
            if let Some(awaiting) = &exchange.turn.awaiting {
                tags.push(format!("awaiting {awaiting}"));
            }
            if let Some(pending) = &exchange.turn.pending_action {
                tags.push(format!("pending {} {}", pending.name, compact(&pending.args)));
            }
            if exchange.turn.handoff {
                tags.push("handoff".to_string());
            }
            if let Some((intent, confidence)) = &exchange.turn.intent {
                tags.push(format!("intent {intent} {confidence:.2}"));
            }
            if !tags.is_empty() {
                writeln!(out, "               [{}]", tags.join("; ")).ok();
            }
        }
        if !self.final_device_state.is_empty() {
            let state: Vec<String> =
                self.final_device_state.iter().map(|(field, value)| format!("{field}={}", render(value))).collect();
            writeln!(out, "     phone at the end: {}", state.join(", ")).ok();
        }
        out
    }
}

/// The outcome of a set of scenarios.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub results: Vec<ScenarioResult>,
}

impl Report {
    pub fn n_passed(&self) -> usize {
        self.results.iter().filter(|result| result.passed).count()
    }

    pub fn n_failed(&self) -> usize {
        self.results.len() - self.n_passed()
    }

    /// `{"passed": n, "failed": n, "results": [{"name", "passed", "why"}]}` (`interfaces.md`).
    pub fn to_json(&self) -> Value {
        json!({
            "passed": self.n_passed(),
            "failed": self.n_failed(),
            "results": self.results.iter().map(|result| json!({
                "name": result.name,
                "passed": result.passed,
                "why": result.why(),
            })).collect::<Vec<_>>(),
        })
    }

    /// One line per scenario, then the totals.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for result in &self.results {
            let turns = result.exchanges.len();
            match result.why() {
                None => writeln!(out, "ok    {} ({turns} replies, {:.2} s)", result.name, result.seconds),
                Some(why) => writeln!(out, "FAIL  {} ({turns} replies, {:.2} s): {why}", result.name, result.seconds),
            }
            .ok();
        }
        let seconds: f64 = self.results.iter().map(|result| result.seconds).sum();
        writeln!(out, "{} passed, {} failed, {:.1} s", self.n_passed(), self.n_failed(), seconds).ok();
        out
    }
}

/// Plays every scenario; `on_result` sees each result as it comes (for progress output).
pub fn run_all<A: Assistant>(
    assistant: &A,
    scenarios: &[Scenario],
    mut on_result: impl FnMut(&ScenarioResult),
) -> Report {
    let mut report = Report::default();
    for scenario in scenarios {
        let result = run_scenario(assistant, scenario);
        on_result(&result);
        report.results.push(result);
    }
    report
}

/// Plays one scenario and checks its expectations.
pub fn run_scenario<A: Assistant>(assistant: &A, scenario: &Scenario) -> ScenarioResult {
    let started = Instant::now();
    let mut play = Play::new(scenario);
    let mut failures = Vec::new();
    match assistant.start(scenario, &scenario.accounts) {
        Err(error) => {
            play.end = EndReason::AssistantError;
            failures.push(format!("the assistant could not start: {error}"));
        }
        Ok(mut session) => {
            if let Err(why) = play.run(assistant, &mut session) {
                failures.push(why);
            }
            failures.extend(check_expectations(assistant, &session, scenario, &play));
        }
    }
    ScenarioResult {
        name: scenario.name.clone(),
        file: scenario.file.clone(),
        passed: failures.is_empty(),
        failures,
        exchanges: play.exchanges,
        end: play.end,
        final_device_state: play.phone,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// A conversation in progress: the simulated customer and their phone.
struct Play<'a> {
    scenario: &'a Scenario,
    phone: BTreeMap<String, Value>,
    exchanges: Vec<Exchange>,
    asked_device_actions: Vec<String>,
    asked_what_else: bool,
    /// Codes typed so far (the next entry of `customer.verification_code`).
    codes_typed: usize,
    end: EndReason,
}

/// What the customer does next.
enum Next {
    Say { text: String, note: Option<String>, phone_note: Option<String> },
    Stop,
}

impl<'a> Play<'a> {
    fn new(scenario: &'a Scenario) -> Self {
        let phone = scenario.device.as_ref().map(|device| device.state.clone()).unwrap_or_default();
        Self {
            scenario,
            phone,
            exchanges: Vec::new(),
            asked_device_actions: Vec::new(),
            asked_what_else: false,
            codes_typed: 0,
            end: EndReason::NothingMoreToSay,
        }
    }

    fn run<A: Assistant>(&mut self, assistant: &A, session: &mut A::Session) -> std::result::Result<(), String> {
        for idx in 0..self.scenario.identity.conversations {
            if idx > 0 {
                assistant
                    .next_conversation(session, self.scenario)
                    .map_err(|error| format!("conversation {} could not start: {error}", idx + 1))?;
                self.asked_what_else = false;
            }
            self.run_conversation(assistant, session)?;
            if self.end == EndReason::AssistantError {
                break;
            }
        }
        Ok(())
    }

    fn run_conversation<A: Assistant>(
        &mut self,
        assistant: &A,
        session: &mut A::Session,
    ) -> std::result::Result<(), String> {
        let first_exchange = self.exchanges.len();
        let mut next = Next::Say { text: self.scenario.opening.clone(), note: None, phone_note: None };
        while let Next::Say { text, note, phone_note } = next {
            let turn = match assistant.respond(session, &text) {
                Ok(turn) => turn,
                Err(error) => {
                    self.end = EndReason::AssistantError;
                    let n = self.exchanges.len() + 1;
                    self.exchanges.push(Exchange {
                        customer: text,
                        customer_note: note,
                        phone_note,
                        turn: TurnView { reply: format!("<error: {error}>"), ..TurnView::default() },
                    });
                    return Err(format!("the assistant failed on message {n}: {error}"));
                }
            };
            self.exchanges.push(Exchange { customer: text, customer_note: note, phone_note, turn: turn.clone() });
            if turn.handoff {
                self.end = EndReason::Handoff;
                return Ok(());
            }
            if self.exchanges.len() - first_exchange >= self.scenario.max_turns {
                self.end = EndReason::MaxTurns;
                return Ok(());
            }
            next = self.customer_reply(assistant, session, &turn)?;
        }
        self.end = EndReason::NothingMoreToSay;
        Ok(())
    }

    /// The simulated customer's answer to a reply.
    fn customer_reply<A: Assistant>(
        &mut self,
        assistant: &A,
        session: &mut A::Session,
        turn: &TurnView,
    ) -> std::result::Result<Next, String> {
        let say = |text: &str, note: Option<String>| Next::Say { text: text.to_string(), note, phone_note: None };
        let awaiting = turn.awaiting.as_deref().map(str::trim).filter(|awaiting| !awaiting.is_empty());
        let Some(awaiting) = awaiting else {
            if turn.pending_action.is_some() {
                return Ok(say(DONT_KNOW, Some("an action is pending but nothing is awaited".into())));
            }
            if self.asked_what_else {
                return Ok(Next::Stop);
            }
            self.asked_what_else = true;
            return Ok(say(WHAT_ELSE, None));
        };
        if awaiting == "confirmation" {
            return Ok(self.confirm(turn));
        }
        if awaiting == "verification_code" {
            return self.type_code(assistant, session);
        }
        if let Some(tool) = awaiting.strip_prefix("device:") {
            return self.use_phone(assistant, session, tool.trim());
        }
        let answer = self.scenario.customer.get(awaiting).or_else(|| self.scenario.decisions.get(awaiting));
        Ok(match answer {
            Some(Value::Null) => say(DONT_KNOW, Some(format!("{awaiting} is null in the scenario"))),
            Some(value) => say(&render(value), None),
            None => say(DONT_KNOW, Some(format!("the scenario has no {awaiting}"))),
        })
    }

    /// The customer types a code: the scenario's next one, else the newest one texted to one of
    /// their own numbers; "I don't know" without access to their phone.
    fn type_code<A: Assistant>(
        &mut self,
        assistant: &A,
        session: &mut A::Session,
    ) -> std::result::Result<Next, String> {
        let identity = &self.scenario.identity;
        let say = |text: &str, note: String| Next::Say { text: text.to_string(), note: Some(note), phone_note: None };
        if !identity.phone_access {
            return Ok(say(DONT_KNOW, "the customer cannot read texts on any line".into()));
        }
        if let Some(minutes) = identity.code_delay_minutes {
            assistant.advance_clock(session, minutes).map_err(|error| format!("moving the clock failed: {error}"))?;
        }
        let answer = identity.verification_codes.get(self.codes_typed).cloned().unwrap_or(CodeAnswer::Latest);
        self.codes_typed += 1;
        Ok(match answer {
            CodeAnswer::Literal(text) => say(&text, "the scenario's code".into()),
            CodeAnswer::Latest => match assistant
                .latest_code(session, &self.scenario.customer)
                .map_err(|error| format!("reading the texts failed: {error}"))?
            {
                Some(code) => say(&code, "the newest code texted to one of their own numbers".into()),
                None => say(DONT_KNOW, "no code reached any of their own numbers".into()),
            },
        })
    }

    fn confirm(&self, turn: &TurnView) -> Next {
        let pending = turn.pending_action.as_ref().map(|pending| pending.name.as_str());
        let (answer, note) = match (&self.scenario.confirmation, pending) {
            (Some(Confirmation::Always(answer)), _) => (Some(*answer), None),
            (Some(Confirmation::ByAction(by_action)), Some(name)) => match by_action.get(name) {
                Some(answer) => (Some(*answer), None),
                None => (None, Some(format!("no decision for confirming {name}"))),
            },
            (Some(Confirmation::ByAction(_)), None) => (None, Some("confirmation without a pending action".into())),
            (None, _) => (None, Some("the scenario has no decisions.confirmation".into())),
        };
        let text = match answer {
            Some(true) => "yes",
            Some(false) => "no",
            None => DONT_KNOW,
        };
        Next::Say { text: text.to_string(), note, phone_note: None }
    }

    fn use_phone<A: Assistant>(
        &mut self,
        assistant: &A,
        session: &A::Session,
        tool: &str,
    ) -> std::result::Result<Next, String> {
        let device = self.scenario.device.as_ref();
        if DEVICE_CHECKS.contains(&tool) {
            let rules = device.and_then(|device| device.checks.get(tool));
            let Some(rules) = rules else {
                return Ok(Next::Say {
                    text: DONT_KNOW.into(),
                    note: Some(format!("the scenario's phone has no answer for {tool}")),
                    phone_note: None,
                });
            };
            for rule in rules {
                if self.holds(assistant, session, &rule.when)? {
                    return Ok(Next::Say { text: fill(&rule.say, &self.phone), note: None, phone_note: None });
                }
            }
            return Ok(Next::Say {
                text: DONT_KNOW.into(),
                note: Some(format!("no {tool} entry applies")),
                phone_note: None,
            });
        }
        if DEVICE_ACTIONS.contains(&tool) {
            self.asked_device_actions.push(tool.to_string());
            let rules = device.and_then(|device| device.actions.get(tool)).cloned().unwrap_or_default();
            let mut phone_note = format!("{tool}: nothing changes");
            for rule in &rules {
                if self.holds(assistant, session, &rule.when)? {
                    for (field, value) in &rule.set {
                        self.phone.insert(field.clone(), value.clone());
                    }
                    if !rule.set.is_empty() {
                        let changes: Vec<String> =
                            rule.set.iter().map(|(field, value)| format!("{field}={}", render(value))).collect();
                        phone_note = format!("{tool}: {}", changes.join(", "));
                    }
                    break;
                }
            }
            return Ok(Next::Say { text: DONE.into(), note: None, phone_note: Some(phone_note) });
        }
        Ok(Next::Say {
            text: DONT_KNOW.into(),
            note: Some(format!("{tool} is not a tau2 telecom user tool")),
            phone_note: None,
        })
    }

    fn holds<A: Assistant>(
        &self,
        assistant: &A,
        session: &A::Session,
        condition: &Condition,
    ) -> std::result::Result<bool, String> {
        for (field, expected) in &condition.state {
            if !lenient_eq(expected, self.phone.get(field)) {
                return Ok(false);
            }
        }
        for (path, expected) in &condition.accounts {
            let actual = assistant
                .read_path(session, path)
                .map_err(|error| format!("reading {path} from the accounts failed: {error}"))?;
            if !lenient_eq(expected, actual.as_ref()) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn check_expectations<A: Assistant>(
    assistant: &A,
    session: &A::Session,
    scenario: &Scenario,
    play: &Play<'_>,
) -> Vec<String> {
    let expect = &scenario.expect;
    let mut failures = Vec::new();
    let runs: Vec<&ActionRun> = play.exchanges.iter().flat_map(|exchange| &exchange.turn.actions).collect();
    let done: Vec<&ActionRun> = runs.iter().copied().filter(|run| run.ran()).collect();

    for pattern in &expect.actions {
        if !done.iter().any(|run| pattern.matches(run)) {
            let tried: Vec<String> = runs
                .iter()
                .filter(|run| run.name == pattern.name)
                .map(|run| format!("{} ({})", compact(&run.args), run.status))
                .collect();
            let ran: Vec<&str> = done.iter().map(|run| run.name.as_str()).collect();
            let detail = if tried.is_empty() {
                format!("actions that ran: {}", if ran.is_empty() { "none".to_string() } else { ran.join(", ") })
            } else {
                format!("it was called with {}", tried.join(", "))
            };
            failures.push(format!("expected action {} did not run; {detail}", pattern.describe()));
        }
    }
    for pattern in &expect.forbidden_actions {
        if let Some(run) = done.iter().find(|run| pattern.matches(run)) {
            failures.push(format!("forbidden action {} ran with {}", pattern.describe(), compact(&run.args)));
        }
    }
    for (path, expected) in &expect.final_state {
        match assistant.read_path(session, path) {
            Err(error) => failures.push(format!("final_state {path}: reading it failed: {error}")),
            Ok(actual) => {
                if !lenient_eq(expected, actual.as_ref()) {
                    let found =
                        actual.as_ref().map(compact).unwrap_or_else(|| "nothing (no such record or field)".into());
                    failures.push(format!("final_state {path}: expected {}, found {found}", compact(expected)));
                }
            }
        }
    }
    let replies: Vec<String> = play.exchanges.iter().map(|exchange| exchange.turn.reply.to_lowercase()).collect();
    for mention in &expect.reply_mentions {
        let needle = mention.to_lowercase();
        if !replies.iter().any(|reply| reply.contains(&needle)) {
            failures.push(format!("no reply mentions {mention:?}"));
        }
    }
    for excluded in &expect.reply_excludes {
        let needle = excluded.to_lowercase();
        if let Some(idx) = replies.iter().position(|reply| reply.contains(&needle)) {
            failures.push(format!("reply {} mentions {excluded:?}", idx + 1));
        }
    }
    if let Some(expected) = expect.handoff {
        let handed_off = play.exchanges.iter().any(|exchange| exchange.turn.handoff);
        if handed_off != expected {
            failures.push(if expected {
                "expected a handoff to a human; there was none".to_string()
            } else {
                let idx = play.exchanges.iter().position(|exchange| exchange.turn.handoff).unwrap_or(0);
                format!("expected no handoff; reply {} handed off", idx + 1)
            });
        }
    }
    for (field, expected) in &expect.device_state {
        let actual = play.phone.get(field);
        if !lenient_eq(expected, actual) {
            let found = actual.map(render).unwrap_or_else(|| "nothing".into());
            failures.push(format!("device_state {field}: expected {}, found {found}", render(expected)));
        }
    }
    if let Some(expected) = &expect.assurance {
        match assistant.assurance(session) {
            Ok(Some(actual)) if actual == *expected => {}
            Ok(Some(actual)) => failures.push(format!("assurance: expected {expected}, found {actual}")),
            Ok(None) => failures.push("assurance: this assistant does not report it".into()),
            Err(error) => failures.push(format!("assurance: reading it failed: {error}")),
        }
    }
    for (numbers, wanted) in [(&expect.codes_sent_to, true), (&expect.codes_not_sent_to, false)] {
        for number in numbers {
            match assistant.texted(session, number) {
                Ok(texted) if texted == wanted => {}
                Ok(_) if wanted => failures.push(format!("no code was texted to {number}")),
                Ok(_) => failures.push(format!("a text went to {number}")),
                Err(error) => failures.push(format!("reading the texts to {number} failed: {error}")),
            }
        }
    }
    for action in &expect.device_actions {
        if !play.asked_device_actions.contains(action) {
            let asked = if play.asked_device_actions.is_empty() {
                "none".to_string()
            } else {
                play.asked_device_actions.join(", ")
            };
            failures.push(format!("the customer was never asked to {action} (asked: {asked})"));
        }
    }
    failures
}

impl ActionPattern {
    /// Whether a run has this name and at least these arguments.
    pub fn matches(&self, run: &ActionRun) -> bool {
        run.name == self.name && self.args.iter().all(|(name, expected)| lenient_eq(expected, run.args.get(name)))
    }

    fn describe(&self) -> String {
        if self.args.is_empty() {
            self.name.clone()
        } else {
            format!("{} {}", self.name, compact(&Value::Object(self.args.clone())))
        }
    }
}

/// Compares a value written in a scenario with one read from the accounts or the phone,
/// leniently: text case-insensitively and trimmed (`"Paid"` == `"paid"`), numbers by value
/// (`2` == `2.0` == `"2"`), `true` == `"true"` == `"on"` == `"yes"`, `null` == absent.
pub fn lenient_eq(expected: &Value, actual: Option<&Value>) -> bool {
    let Some(actual) = actual else { return expected.is_null() };
    match (expected, actual) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Bool(a), Value::String(text)) | (Value::String(text), Value::Bool(a)) => switch_word(text) == Some(*a),
        (Value::Number(a), Value::Number(b)) => same_number(a.as_f64(), b.as_f64()),
        (Value::Number(a), Value::String(text)) | (Value::String(text), Value::Number(a)) => {
            same_number(a.as_f64(), text.trim().parse::<f64>().ok())
        }
        (Value::String(a), Value::String(b)) => normalise(a) == normalise(b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| lenient_eq(a, Some(b)))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(key, value)| lenient_eq(value, b.get(key)))
        }
        _ => false,
    }
}

fn switch_word(text: &str) -> Option<bool> {
    match normalise(text).as_str() {
        "true" | "on" | "yes" | "enabled" => Some(true),
        "false" | "off" | "no" | "disabled" => Some(false),
        _ => None,
    }
}

fn same_number(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0),
        _ => false,
    }
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// A value as the customer says it: text as is, numbers without a trailing `.0`.
fn render(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "none".to_string(),
        Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() < 1e15 => format!("{}", float as i64),
            _ => number.to_string(),
        },
        other => other.to_string(),
    }
}

/// `{field}` replaced by the phone state's value (`unknown` when the phone has no such field).
fn fill(template: &str, state: &BTreeMap<String, Value>) -> String {
    let mut out = template.to_string();
    for name in placeholders(template) {
        let value = state.get(&name).map(render).unwrap_or_else(|| "unknown".to_string());
        out = out.replace(&format!("{{{name}}}"), &value);
    }
    out
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests;
