//! Wiring: opens the stores, fetches and loads the models, ingests the knowledge, trains or
//! loads the intent model, and builds the engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::config::{Settings, StorageBackend};
use crate::http::{AppState, Readiness};
use engine::conversations::ConversationStore;
use engine::dialogue::models::{ChatBackend, IntentPredictor, IntentsOnEncoder, SentenceEncoder};
use engine::dialogue::{Engine, EngineParts, Retrieve};

/// Opens what the server needs before any model is loaded.
pub fn open_state(settings: Settings) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    let db = open_db(&settings)?;
    let conversations = ConversationStore::open(&db)?;
    let limits = crate::http::limits::Limits::new(&settings.limits);
    Ok(AppState { settings: Arc::new(settings), db, conversations, readiness: Readiness::default(), limits })
}

/// The process's database: sled under the data dir (`[storage] backend = "sled"`, one process
/// per data dir), or PostgreSQL (`"postgres"`, shared by every instance; migrated here).
pub fn open_db(settings: &Settings) -> anyhow::Result<storage::Store> {
    match settings.storage.backend {
        StorageBackend::Sled => open_sled(&settings.data_dir),
        StorageBackend::Postgres => open_postgres(settings),
    }
}

fn open_sled(data_dir: &Path) -> anyhow::Result<storage::Store> {
    let path = data_dir.join("db");
    storage::Store::open_sled(&path, Some(200)).map_err(|error| match error {
        storage::Error::Locked(_) => anyhow::Error::new(crate::BadInput(format!(
            "the data dir {} is in use by another switchboard process; stop it, pass --data-dir, or use \
             [storage] backend = \"postgres\" for several instances",
            data_dir.display()
        ))),
        other => anyhow::Error::new(other).context(format!("opening the database at {}", path.display())),
    })
}

fn open_postgres(settings: &Settings) -> anyhow::Result<storage::Store> {
    let postgres = &settings.storage.postgres;
    if postgres.url.is_empty() {
        return Err(anyhow::Error::new(crate::BadInput(
            "[storage] backend = \"postgres\" needs storage.postgres.url (or SWITCHBOARD_STORAGE__POSTGRES__URL)"
                .into(),
        )));
    }
    storage::Store::postgres(&postgres.to_storage()).map_err(|error| match error {
        storage::Error::SchemaTooNew { .. } => anyhow::Error::new(crate::BadInput(error.to_string())),
        other => anyhow::Error::new(other).context("opening the PostgreSQL database (storage.postgres.url)"),
    })
}

/// Loads the engine on a background thread; `/readyz` reports progress and failure.
pub fn load_in_background(state: Arc<AppState>) {
    std::thread::Builder::new()
        .name("engine-loader".into())
        .spawn(move || match load_engine(&state) {
            Ok(engine) => state.readiness.set_engine(Arc::new(engine)),
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "the assistant could not start");
                state.readiness.set_failure(format!("{error:#}"));
            }
        })
        .expect("spawning the loader thread");
}

/// Paths of the models to load: configured ones, else the pinned defaults (fetched once).
pub struct ModelPaths {
    pub encoder_dir: PathBuf,
    pub chat_gguf: Option<PathBuf>,
}

pub fn resolve_models(settings: &Settings) -> anyhow::Result<ModelPaths> {
    let need_defaults = settings.models.encoder_dir.is_none()
        || (settings.models.chat_gguf.is_none() && !settings.models.chat_disabled);
    let defaults =
        if need_defaults { Some(inference::fetch::ensure_default_models(&settings.models_dir)?) } else { None };
    let encoder_dir = match (&settings.models.encoder_dir, &defaults) {
        (Some(dir), _) => dir.clone(),
        (None, Some(files)) => files.encoder_dir.clone(),
        (None, None) => unreachable!("defaults are fetched when no encoder is configured"),
    };
    let chat_gguf = if settings.models.chat_disabled {
        None
    } else {
        match (&settings.models.chat_gguf, &defaults) {
            (Some(path), _) => Some(path.clone()),
            (None, Some(files)) => Some(files.chat_gguf.clone()),
            (None, None) => None,
        }
    };
    Ok(ModelPaths { encoder_dir, chat_gguf })
}

pub fn load_embedder(dir: &Path) -> anyhow::Result<Arc<inference::SentenceEmbedder>> {
    Ok(Arc::new(inference::SentenceEmbedder::load(dir)?))
}

pub fn load_chat(path: &Path) -> anyhow::Result<Arc<inference::ChatModel>> {
    Ok(Arc::new(inference::ChatModel::load(path)?))
}

/// Everything the engine needs, loaded in order.
pub fn load_engine(state: &AppState) -> anyhow::Result<Engine> {
    let settings = &state.settings;
    let readiness = &state.readiness;
    readiness.set_stage("opening accounts");
    let registry = Arc::new(
        accounts::open_registry(&state.db, &settings.accounts, &settings.hooks).context("opening the account store")?,
    );
    readiness.set_stage("fetching models");
    let paths = resolve_models(settings)?;
    readiness.set_stage("loading the encoder");
    let embedder = load_embedder(&paths.encoder_dir)?;
    let chat: Option<Arc<dyn ChatBackend>> = match &paths.chat_gguf {
        Some(path) => {
            readiness.set_stage("loading the chat model");
            Some(load_chat(path)? as Arc<dyn ChatBackend>)
        }
        None => None,
    };
    readiness.set_stage("indexing knowledge");
    let knowledge = engine::retrieval::open_and_ingest(&settings.knowledge, &settings.data_dir, embedder.clone())?;
    let catalogue = engine::retrieval::catalogue(&settings.knowledge, &settings.data_dir)?;
    readiness.set_stage("training the intent model");
    let intents = load_intents(settings, embedder.clone())?;
    let plans: Vec<inference::entities::PlanCatalogEntry> = registry
        .store()
        .plans()?
        .into_iter()
        .map(|plan| inference::entities::PlanCatalogEntry { plan_id: plan.plan_id.to_string(), name: plan.name })
        .collect();
    let entities = inference::entities::EntityExtractor::new(plans, registry.today());
    Ok(Engine::new(EngineParts {
        encoder: embedder as Arc<dyn SentenceEncoder>,
        chat,
        knowledge: knowledge as Arc<dyn Retrieve>,
        intents: Some(intents),
        entities,
        registry,
        conversations: state.conversations.clone(),
        book: prompts::telco_flows()?,
        replies: prompts::telco_replies()?,
        settings: settings.dialogue.clone(),
        identity: Arc::new(open_identity(&state.db, settings, Arc::new(engine::identity::SystemClock))?),
        catalogue,
    })?)
}

/// The identity checks of the configuration: the SMS gateway (or the demo outbox under the data
/// dir), the operator's network APIs when `[camara]` names them, the stores in `db`.
pub fn open_identity(
    db: &storage::Store,
    settings: &Settings,
    clock: Arc<dyn engine::identity::Clock>,
) -> anyhow::Result<engine::identity::Identity> {
    let sms = engine::identity::sms::gateway(&settings.sms, &settings.data_dir).context("configuring [sms]")?;
    let network: Option<Arc<dyn engine::identity::NetworkApi>> = if settings.camara.is_configured() {
        let camara = engine::identity::network::Camara::new(settings.camara.clone()).context("configuring [camara]")?;
        Some(Arc::new(camara))
    } else {
        None
    };
    Ok(engine::identity::Identity::open(db, settings.identity.clone(), sms, network, clock)?)
}

/// The intent model of `intents.data` (the demo set by default), trained once and cached
/// under the data dir.
pub fn load_intents(
    settings: &Settings,
    embedder: Arc<inference::SentenceEmbedder>,
) -> anyhow::Result<Arc<dyn IntentPredictor>> {
    use inference::intent::{DataFormat, Split, TrainConfig, parse_dataset, train_or_load};
    let (bytes, path) = if settings.intents.data == "demo" {
        (prompts::TELCO_INTENTS.as_bytes().to_vec(), PathBuf::from("prompts/telco/intents.yaml"))
    } else {
        let path = PathBuf::from(&settings.intents.data);
        let bytes = std::fs::read(&path).with_context(|| format!("reading intent data {}", path.display()))?;
        (bytes, path)
    };
    let format = DataFormat::from_path(&path).unwrap_or(DataFormat::Yaml);
    let dataset = parse_dataset(&bytes, &path, format, Split::Train)?;
    let cache_dir = settings.data_dir.join("models");
    // The demo set has no out-of-scope examples; the dialogue engine was tuned with the model
    // rejecting the lowest 2% of held-out scores as out of scope (the library default rejects
    // nothing without out-of-scope data), so the demo keeps that budget.
    let config = TrainConfig { max_in_scope_rejection: 0.02, ..TrainConfig::default() };
    let model = train_or_load(&cache_dir, &dataset, embedder.as_ref(), &config).context("training the intent model")?;
    Ok(Arc::new(IntentsOnEncoder { model, encoder: embedder }))
}
