//! `switchboard eval scenarios DIR... [--json]`: plays scenario files (`docs/scenarios.md`)
//! against the real dialogue engine and checks what was done to the accounts and the phone.
//!
//! The models, the knowledge index and the intent model are loaded once; every scenario gets
//! its own engine over a fresh temporary account store holding its accounts file, a fresh
//! conversation store and a fixed business date: the scenario's `today:`, else the accounts
//! file's `[meta] today`, else the tau2 policy's date (2025-02-25).
//!
//! Knowledge answers are extractive unless a chat model is configured explicitly
//! (`models.chat_gguf`): the pinned default model would add seconds to every knowledge answer
//! and its sentences are replaced by the extractive answer whenever the guardrail rejects
//! them, so scenarios check the same facts faster without it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use chrono::NaiveDate;
use evals::scenarios::{ActionRun, Assistant, AssistantError, PendingAction, Report, Scenario, TurnView};

use crate::BadInput;
use crate::config::Secret;
use crate::config::Settings;
use accounts::CustomerId;
use accounts::ids::{PhoneNumber, phone_key};
use accounts::{AccountStore, AccountsData, ActionRegistry, RegistryOptions, TAU2_TODAY};
use engine::conversations::{Channel, ConversationStore};
use engine::dialogue::models::{ChatBackend, IntentPredictor, SentenceEncoder};
use engine::dialogue::state::State;
use engine::dialogue::{CustomerText, Engine, EngineParts, NoTokens, Retrieve};
use engine::identity::sms::Outbox;
use engine::identity::{Clock, Identity, NetworkApi, NetworkError, OffsetClock, Proof};
use evals::scenarios::ScenarioChannel;

/// Runs the scenarios of `dirs`; exit status 1 when any fails, 2 on bad files.
pub fn run(settings: &Settings, dirs: &[PathBuf], json: bool) -> anyhow::Result<()> {
    let scenarios = load(dirs)?;
    let loading = Instant::now();
    let assistant = EngineAssistant::load(settings)?;
    eprintln!(
        "loaded the models, knowledge and intents in {:.1} s ({}); playing {} scenarios",
        loading.elapsed().as_secs_f64(),
        if assistant.has_chat() { "with the chat model" } else { "extractive answers, no chat model" },
        scenarios.len()
    );
    let playing = Instant::now();
    let report = evals::scenarios::run_all(&assistant, &scenarios, |result| {
        let verdict = if result.passed { "ok  " } else { "FAIL" };
        eprintln!("{verdict} {} ({} replies, {:.2} s)", result.name, result.exchanges.len(), result.seconds);
    });
    let latency = assistant.turn_latency();
    // Transcripts of the failures; of the one scenario when only one was played.
    let show_all = report.results.len() == 1;
    for result in report.results.iter().filter(|result| show_all || !result.passed) {
        if json {
            eprintln!("{}", result.transcript());
        } else {
            println!("{}", result.transcript());
        }
    }
    let timing = format!(
        "{} scenarios in {:.1} s ({:.2} s per scenario); {} turns, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms per turn",
        report.results.len(),
        playing.elapsed().as_secs_f64(),
        playing.elapsed().as_secs_f64() / report.results.len().max(1) as f64,
        latency.n_turns,
        latency.p50_ms,
        latency.p95_ms,
        latency.max_ms,
    );
    if json {
        eprint!("{}", report.summary());
        eprintln!("{timing}");
        println!("{}", report.to_json());
    } else {
        print!("{}", report.summary());
        println!("{timing}");
    }
    if report.n_failed() > 0 {
        anyhow::bail!("{} of {} scenarios failed", report.n_failed(), report.results.len());
    }
    Ok(())
}

/// Loads the scenarios and the models and plays every scenario: what `run` and the
/// integration test share.
pub fn run_report(settings: &Settings, dirs: &[PathBuf]) -> anyhow::Result<Report> {
    let scenarios = load(dirs)?;
    let assistant = EngineAssistant::load(settings)?;
    Ok(evals::scenarios::run_all(&assistant, &scenarios, |_| {}))
}

/// Reads and checks the scenario files and the accounts files they name (bad input: exit 2).
pub fn load(dirs: &[PathBuf]) -> anyhow::Result<Vec<Scenario>> {
    let one_line = |text: String| text.replace('\n', " ");
    let scenarios = evals::scenarios::load_paths(dirs).map_err(|error| BadInput(one_line(error.to_string())))?;
    let mut checked: BTreeMap<PathBuf, ()> = BTreeMap::new();
    for scenario in &scenarios {
        if checked.insert(scenario.accounts.clone(), ()).is_none() {
            AccountsData::from_file(&scenario.accounts)
                .map_err(|error| BadInput(one_line(format!("{}: accounts: {error}", scenario.file.display()))))?;
        }
        if let Some(today) = &scenario.today {
            today.parse::<NaiveDate>().map_err(|error| {
                BadInput(format!("{}: today: {today:?} is not a date: {error}", scenario.file.display()))
            })?;
        }
    }
    Ok(scenarios)
}

/// The business date of a scenario: its `today:`, else the accounts file's, else the tau2 date.
pub fn business_date(scenario: &Scenario, data: &AccountsData) -> anyhow::Result<NaiveDate> {
    match &scenario.today {
        Some(today) => today.parse().with_context(|| format!("today: {today:?} is not a date")),
        None => Ok(data.today.unwrap_or(TAU2_TODAY)),
    }
}

/// The real engine as the scenario harness's assistant: models loaded once, a fresh engine
/// over fresh stores per scenario.
pub struct EngineAssistant {
    settings: Settings,
    encoder: Arc<inference::SentenceEmbedder>,
    chat: Option<Arc<dyn ChatBackend>>,
    knowledge: Arc<dyn Retrieve>,
    catalogue: Option<Arc<knowledge::Catalogue>>,
    intents: Arc<dyn IntentPredictor>,
    book: prompts::FlowBook,
    replies: prompts::Replies,
    turn_ms: Mutex<Vec<f64>>,
    /// With `[storage] backend = "postgres"`: the database each scenario gets a namespace of
    /// (with sled, each gets a temporary database).
    shared: Option<storage::Store>,
}

/// One scenario's conversations, with their own stores, outbox and clock.
pub struct EngineSession {
    engine: Engine,
    conversation_id: String,
    clock: Arc<OffsetClock>,
    outbox: Outbox,
    /// The outbox lives here (and the identity records beside the conversations).
    _dir: tempfile::TempDir,
}

/// The key host pages sign identities with in scenarios.
const SCENARIO_WIDGET_SECRET: &str = "scenario widget secret";

/// The operator's network as a scenario describes it: hours since each number's SIM swap,
/// answered as CAMARA SIM Swap `check` does (swapped within `maxAge` hours).
struct ScenarioNetwork {
    sim_swaps: BTreeMap<String, f64>,
    max_age_hours: u32,
}

impl NetworkApi for ScenarioNetwork {
    fn sim_swapped_recently(&self, phone_e164: &str) -> Result<bool, NetworkError> {
        let key = phone_key(phone_e164);
        Ok(self
            .sim_swaps
            .iter()
            .any(|(number, hours)| phone_key(number) == key && *hours <= f64::from(self.max_age_hours)))
    }

    fn number_verified(&self, _access_token: &str, _phone_e164: &str) -> Result<bool, NetworkError> {
        Err(NetworkError::Refused { status: 501, code: "NOT_IMPLEMENTED".into() })
    }

    fn exchange_code(&self, _code: &str, _redirect_uri: &str) -> Result<String, NetworkError> {
        Err(NetworkError::Refused { status: 501, code: "NOT_IMPLEMENTED".into() })
    }
}

/// Per-turn time of the engine over the turns played so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnLatency {
    pub n_turns: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

impl EngineAssistant {
    /// Loads the encoder, the chat model when one is configured explicitly, the knowledge
    /// index (ingesting `knowledge.dirs`) and the intent model (trained once, cached under the
    /// data dir).
    pub fn load(settings: &Settings) -> anyhow::Result<Self> {
        let mut settings = settings.clone();
        if settings.models.chat_gguf.is_none() {
            settings.models.chat_disabled = true;
        }
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
        let paths = crate::app::resolve_models(&settings)?;
        let encoder = crate::app::load_embedder(&paths.encoder_dir)?;
        let chat = match &paths.chat_gguf {
            Some(path) => Some(crate::app::load_chat(path)? as Arc<dyn ChatBackend>),
            None => None,
        };
        let knowledge = engine::retrieval::open_and_ingest(&settings.knowledge, &settings.data_dir, encoder.clone())?
            as Arc<dyn Retrieve>;
        let catalogue = engine::retrieval::catalogue(&settings.knowledge, &settings.data_dir)?;
        let intents = crate::app::load_intents(&settings, encoder.clone())?;
        let shared = match settings.storage.backend {
            crate::config::StorageBackend::Sled => None,
            crate::config::StorageBackend::Postgres => Some(crate::app::open_db(&settings)?),
        };
        Ok(Self {
            shared,
            catalogue,
            book: prompts::telco_flows()?,
            replies: prompts::telco_replies()?,
            settings,
            encoder,
            chat,
            knowledge,
            intents,
            turn_ms: Mutex::new(Vec::new()),
        })
    }

    pub fn has_chat(&self) -> bool {
        self.chat.is_some()
    }

    /// The engine's time per turn over every turn played so far.
    pub fn turn_latency(&self) -> TurnLatency {
        let mut times = self.turn_ms.lock().map(|times| times.clone()).unwrap_or_default();
        if times.is_empty() {
            return TurnLatency::default();
        }
        times.sort_by(f64::total_cmp);
        let at = |share: f64| times[((times.len() - 1) as f64 * share).round() as usize];
        TurnLatency { n_turns: times.len(), p50_ms: at(0.5), p95_ms: at(0.95), max_ms: times[times.len() - 1] }
    }

    fn engine_for(
        &self,
        scenario: &Scenario,
        accounts_file: &Path,
        dir: &Path,
        clock: Arc<OffsetClock>,
    ) -> anyhow::Result<Engine> {
        let data = AccountsData::from_file(accounts_file)?;
        let today = business_date(scenario, &data)?;
        let network: Option<Arc<dyn NetworkApi>> = (!scenario.identity.sim_swaps.is_empty()).then(|| {
            Arc::new(ScenarioNetwork {
                sim_swaps: scenario.identity.sim_swaps.clone(),
                max_age_hours: self.settings.camara.sim_swap_max_age_hours,
            }) as Arc<dyn NetworkApi>
        });
        self.engine_over(&data, today, dir, clock, network)
    }

    /// An engine over a fresh temporary copy of `data`, with its own conversations, outbox
    /// (under `dir`) and clock.
    pub fn engine_over(
        &self,
        data: &AccountsData,
        today: NaiveDate,
        dir: &Path,
        clock: Arc<OffsetClock>,
        network: Option<Arc<dyn NetworkApi>>,
    ) -> anyhow::Result<Engine> {
        let db = match &self.shared {
            Some(shared) => shared.namespaced(&format!("scenario-{}", uuid::Uuid::new_v4().simple())),
            None => storage::Store::temporary().context("opening a temporary conversation store")?,
        };
        let store = AccountStore::open(&db)?;
        store.import(data, accounts::ImportMode::Replace)?;
        let registry =
            Arc::new(ActionRegistry::new(store, RegistryOptions { today: Some(today), ..RegistryOptions::default() })?);
        let conversations = ConversationStore::open(&db)?;
        let identity = Identity::open(
            &db,
            self.settings.identity.clone(),
            Arc::new(Outbox::in_data_dir(dir)),
            network,
            clock as Arc<dyn Clock>,
        )?;
        let plans = registry
            .store()
            .plans()?
            .into_iter()
            .map(|plan| inference::entities::PlanCatalogEntry { plan_id: plan.plan_id.to_string(), name: plan.name })
            .collect();
        Ok(Engine::new(EngineParts {
            encoder: self.encoder.clone() as Arc<dyn SentenceEncoder>,
            chat: self.chat.clone(),
            knowledge: self.knowledge.clone(),
            intents: Some(self.intents.clone()),
            entities: inference::entities::EntityExtractor::new(plans, today),
            registry,
            conversations,
            book: self.book.clone(),
            replies: self.replies.clone(),
            settings: self.settings.dialogue.clone(),
            identity: Arc::new(identity),
            catalogue: self.catalogue.clone(),
        })?)
    }

    /// Opens a conversation of the scenario: on its channel, with its signed identity.
    fn open_conversation(&self, engine: &Engine, scenario: &Scenario) -> anyhow::Result<String> {
        let identity = &scenario.identity;
        let sender = scenario.customer.get("phone_number").and_then(serde_json::Value::as_str);
        let conversation = match identity.channel {
            ScenarioChannel::Whatsapp => {
                engine.conversations().create(Channel::Whatsapp, sender.map(str::to_string))?
            }
            ScenarioChannel::Web => engine.conversations().create(Channel::Web, None)?,
        };
        if let Some(widget) = &identity.widget_identity {
            let secret = Secret::new(SCENARIO_WIDGET_SECRET);
            let now = crate::channels::identity::unix_now();
            let expires = now.saturating_add_signed(widget.expires_in_minutes * 60);
            let signing_secret = if widget.forged { Secret::new("not the operator's secret") } else { secret.clone() };
            let hash = crate::channels::identity::sign_identity(&signing_secret, &widget.customer_id, expires);
            match crate::channels::identity::verify_signed_identity(
                &secret,
                &widget.customer_id,
                Some(expires),
                &hash,
                now,
            ) {
                Ok(()) => engine.identify(&conversation.id, &widget.customer_id, Proof::SignedHostPage)?,
                Err(error) => tracing::info!(%error, "the scenario's signed identity was refused"),
            }
        }
        Ok(conversation.id)
    }

    /// The numbers of the account the simulated customer holds: its lines and contact number.
    fn own_numbers(&self, session: &EngineSession, customer: &BTreeMap<String, serde_json::Value>) -> Vec<String> {
        let store = session.engine.registry().store();
        let text = |key: &str| customer.get(key).and_then(serde_json::Value::as_str).map(str::to_string);
        let by_id = text("customer_id")
            .and_then(|id| CustomerId::parse(id).ok())
            .and_then(|id| store.customer(&id).ok().flatten());
        let by_phone = || {
            text("phone_number")
                .and_then(|phone| PhoneNumber::parse(phone).ok())
                .and_then(|phone| store.customer_by_phone(&phone).ok().flatten())
        };
        // By name; the date of birth (as the scenario writes it, maybe in words) only tells
        // namesakes apart.
        let by_name = || {
            let mut named = store.customers_by_name(&text("full_name")?).ok()?;
            if named.len() > 1 {
                let dob = text("date_of_birth")?.parse::<NaiveDate>().ok()?;
                named.retain(|customer| customer.date_of_birth == dob);
            }
            (named.len() == 1).then(|| named.remove(0))
        };
        let Some(account) = by_id.or_else(by_phone).or_else(by_name) else { return Vec::new() };
        let mut numbers = vec![account.phone_number.as_str().to_string()];
        for line_id in &account.line_ids {
            if let Ok(Some(line)) = store.line(line_id) {
                numbers.push(line.phone_number.as_str().to_string());
            }
        }
        numbers
    }
}

impl Assistant for EngineAssistant {
    type Session = EngineSession;

    fn start(&self, scenario: &Scenario, accounts_file: &Path) -> Result<EngineSession, AssistantError> {
        let dir = tempfile::tempdir()?;
        let clock = Arc::new(OffsetClock::default());
        let engine = self.engine_for(scenario, accounts_file, dir.path(), clock.clone())?;
        let conversation_id = self.open_conversation(&engine, scenario)?;
        let outbox = Outbox::in_data_dir(dir.path());
        Ok(EngineSession { engine, conversation_id, clock, outbox, _dir: dir })
    }

    fn next_conversation(&self, session: &mut EngineSession, scenario: &Scenario) -> Result<(), AssistantError> {
        session.conversation_id = self.open_conversation(&session.engine, scenario)?;
        Ok(())
    }

    fn latest_code(
        &self,
        session: &EngineSession,
        customer: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Option<String>, AssistantError> {
        let own: Vec<String> = self.own_numbers(session, customer).iter().map(|number| phone_key(number)).collect();
        Ok(session
            .outbox
            .read()
            .into_iter()
            .rev()
            .filter(|text| own.contains(&phone_key(&text.to)))
            .find_map(|text| code_in(&text.text)))
    }

    fn texted(&self, session: &EngineSession, number: &str) -> Result<bool, AssistantError> {
        let key = phone_key(number);
        Ok(session.outbox.read().iter().any(|text| phone_key(&text.to) == key))
    }

    fn advance_clock(&self, session: &mut EngineSession, minutes: i64) -> Result<(), AssistantError> {
        session.clock.advance(minutes);
        Ok(())
    }

    fn assurance(&self, session: &EngineSession) -> Result<Option<String>, AssistantError> {
        let events = session.engine.conversations().events(&session.conversation_id)?;
        Ok(Some(State::replay(&events).assurance().as_str().to_string()))
    }

    fn respond(&self, session: &mut EngineSession, text: &str) -> Result<TurnView, AssistantError> {
        let text = CustomerText::parse(text)?;
        let (turn, times) = session.engine.respond(&session.conversation_id, &text, &NoTokens)?;
        if let Ok(mut turn_ms) = self.turn_ms.lock() {
            turn_ms.push(times.total_ms);
        }
        Ok(TurnView {
            reply: turn.reply,
            awaiting: turn.awaiting,
            pending_action: turn.pending_action.map(|pending| PendingAction { name: pending.name, args: pending.args }),
            actions: turn
                .actions
                .into_iter()
                .map(|action| ActionRun { name: action.name, args: action.args, status: action.status })
                .collect(),
            handoff: turn.handoff,
            intent: turn.intent.map(|intent| (intent.name, intent.confidence)),
        })
    }

    fn read_path(&self, session: &EngineSession, path: &str) -> Result<Option<serde_json::Value>, AssistantError> {
        Ok(session.engine.registry().store().read_path(path)?)
    }
}

/// The 6-digit code in a text message.
fn code_in(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit()).find(|digits| digits.len() == 6).map(str::to_string)
}
