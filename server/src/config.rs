//! One `Settings` tree: defaults, then the TOML file (`--config`), then `SWITCHBOARD_*`
//! environment variables (`SWITCHBOARD_WHATSAPP__APP_SECRET` sets `whatsapp.app_secret`),
//! then the command line's `--data-dir`/`--models-dir`/`--addr`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

pub use crate::http::limits::LimitSettings;
pub use accounts::config::scalar_as_string;
pub use accounts::{AccountSettings, HookSettings, Secret};
pub use engine::config::{ConsoleSettings, DialogueSettings, KnowledgeSettings, QdrantSettings};
pub use engine::identity::IdentitySettings;
pub use engine::identity::network::CamaraSettings;
pub use engine::identity::sms::SmsSettings;

/// The prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "SWITCHBOARD_";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where sled (with the default storage), indexes and trained models live.
    #[serde(deserialize_with = "path_from_scalar")]
    pub data_dir: PathBuf,
    /// Where fetched models live (shared by every checkout on the machine).
    #[serde(deserialize_with = "path_from_scalar")]
    pub models_dir: PathBuf,
    pub server: ServerSettings,
    /// Where conversations, accounts and the console's state live.
    pub storage: StorageSettings,
    pub models: ModelSettings,
    pub accounts: AccountSettings,
    pub knowledge: KnowledgeSettings,
    pub intents: IntentSettings,
    pub dialogue: DialogueSettings,
    pub staff: StaffSettings,
    pub whatsapp: WhatsAppSettings,
    pub widget: WidgetSettings,
    pub console: ConsoleSettings,
    /// Who the customer is: proofs, lapses, lockouts, what needs which level.
    pub identity: IdentitySettings,
    /// The operator's SMS gateway (verification codes).
    pub sms: SmsSettings,
    /// The operator's network APIs (CAMARA SIM Swap, Number Verification).
    pub camara: CamaraSettings,
    /// Rate limits of the public routes.
    pub limits: LimitSettings,
    /// Account actions mapped to the operator's HTTP endpoints, by action name.
    pub hooks: BTreeMap<String, HookSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./.switchboard"),
            models_dir: inference::fetch::default_models_dir(),
            server: ServerSettings::default(),
            storage: StorageSettings::default(),
            models: ModelSettings::default(),
            accounts: AccountSettings::default(),
            knowledge: KnowledgeSettings::default(),
            intents: IntentSettings::default(),
            dialogue: DialogueSettings::default(),
            staff: StaffSettings::default(),
            whatsapp: WhatsAppSettings::default(),
            widget: WidgetSettings::default(),
            console: ConsoleSettings::default(),
            identity: IdentitySettings::default(),
            sms: SmsSettings::default(),
            camara: CamaraSettings::default(),
            limits: LimitSettings::default(),
            hooks: BTreeMap::new(),
        }
    }
}

/// `[storage]`: sled in the data dir (one instance), or PostgreSQL (any number of instances).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    pub backend: StorageBackend,
    pub postgres: PostgresSettings,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageBackend {
    #[default]
    Sled,
    Postgres,
}

/// `[storage.postgres]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port/database` (`SWITCHBOARD_STORAGE__POSTGRES__URL`).
    pub url: Secret,
    /// Connections for statements; as many again hold conversations' turn locks.
    pub pool_size: u32,
    /// Seconds a statement waits for a connection, and a turn for another instance's turn.
    pub acquire_timeout_secs: u64,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self { url: Secret::default(), pool_size: 16, acquire_timeout_secs: 10 }
    }
}

impl PostgresSettings {
    pub fn to_storage(&self) -> storage::PostgresSettings {
        storage::PostgresSettings {
            url: self.url.expose().to_string(),
            pool_size: self.pool_size,
            acquire_timeout: std::time::Duration::from_secs(self.acquire_timeout_secs.max(1)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    #[serde(deserialize_with = "scalar_as_string")]
    pub addr: String,
    /// Origins allowed to call the API from a browser (the widget's host pages); `*` allows any.
    pub cors_origins: Vec<String>,
    /// The public base URL, used in the widget snippet and in links; empty: derived from the request.
    #[serde(deserialize_with = "scalar_as_string")]
    pub public_url: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self { addr: "127.0.0.1:8080".into(), cors_origins: vec!["*".into()], public_url: String::new() }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    /// A BERT-family encoder folder (model.safetensors, tokenizer.json, config.json);
    /// empty: the pinned default, fetched into `models_dir`.
    #[serde(deserialize_with = "optional_path_from_scalar")]
    pub encoder_dir: Option<PathBuf>,
    /// A Llama-architecture GGUF chat model; empty: the pinned default.
    #[serde(deserialize_with = "optional_path_from_scalar")]
    pub chat_gguf: Option<PathBuf>,
    /// Turn the chat model off (answers are then purely extractive).
    pub chat_disabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntentSettings {
    /// Intent training data (YAML); `demo` is the built-in telco intent set.
    #[serde(deserialize_with = "scalar_as_string")]
    pub data: String,
}

impl Default for IntentSettings {
    fn default() -> Self {
        Self { data: "demo".into() }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaffSettings {
    /// Bearer token for the staff API; empty: the staff API refuses every request.
    pub api_token: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsAppSettings {
    pub verify_token: Secret,
    pub app_secret: Secret,
    pub access_token: Secret,
    /// Meta's id of the business phone number: all digits, and a string.
    #[serde(deserialize_with = "scalar_as_string")]
    pub phone_number_id: String,
    #[serde(deserialize_with = "scalar_as_string")]
    pub api_base_url: String,
    /// Template sent outside the 24-hour customer-service window.
    #[serde(deserialize_with = "scalar_as_string")]
    pub template_name: String,
    #[serde(deserialize_with = "scalar_as_string")]
    pub template_language: String,
    /// Worker tasks answering stored notifications in this instance (one sender's messages
    /// always go to the same worker, in order).
    pub workers: usize,
    /// Seconds a worker owns a job it claimed; a job whose worker died (with its instance) is
    /// taken over by any instance after that.
    pub job_lease_secs: u64,
}

impl Default for WhatsAppSettings {
    fn default() -> Self {
        Self {
            verify_token: Secret::default(),
            app_secret: Secret::default(),
            access_token: Secret::default(),
            phone_number_id: String::new(),
            api_base_url: "https://graph.facebook.com/v21.0".into(),
            template_name: "customer_care_followup".into(),
            template_language: "en_US".into(),
            workers: 2,
            job_lease_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WidgetSettings {
    /// Secret for `data-customer-hash` = HMAC-SHA256(customer id, secret); empty: signed-in
    /// customers from host pages are not trusted.
    pub secret: Secret,
}

/// Overrides from the command line, applied last.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub models_dir: Option<PathBuf>,
    pub addr: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads defaults, then `file`, then the `SWITCHBOARD_*` environment, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let vars =
            std::env::vars_os().filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)));
        Self::load_from(file, overrides, vars)
    }

    /// Loads defaults, then `file`, then the `SWITCHBOARD_*` variables among `vars`, then
    /// `overrides`. The variables are passed in, so tests never touch the process environment.
    pub fn load_from(
        file: Option<&Path>,
        overrides: &Overrides,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError(format!("config file {} not found", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        let environment = Environment::from_vars(vars);
        let mut settings: Settings =
            figment.merge(environment).extract_lossy().map_err(|error| ConfigError(flatten_figment_error(error)))?;
        if let Some(dir) = &overrides.data_dir {
            settings.data_dir = dir.clone();
        }
        if let Some(dir) = &overrides.models_dir {
            settings.models_dir = dir.clone();
        }
        if let Some(addr) = &overrides.addr {
            settings.server.addr = addr.clone();
        }
        Ok(settings)
    }

    /// Settings for tests: defaults with the given data dir and no environment.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        Self { data_dir: data_dir.to_path_buf(), ..Self::default() }
    }
}

/// The `SWITCHBOARD_*` variables as a configuration source: `SWITCHBOARD_WHATSAPP__APP_SECRET`
/// sets `whatsapp.app_secret`. Values are read as TOML-like scalars and arrays (`8080`, `true`,
/// `[a, b]`); string keys take any scalar as its text, so `106540352242922` stays a string, and
/// numeric and boolean keys take their text (`extract_lossy`).
struct Environment {
    keys: Vec<(String, Value)>,
}

impl Environment {
    fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let keys = vars
            .into_iter()
            .filter_map(|(name, raw)| {
                let key = name.strip_prefix(ENV_PREFIX)?.to_lowercase().replace("__", ".");
                let value: Value = match raw.parse() {
                    Ok(value) => value,
                    Err(never) => match never {},
                };
                (!key.is_empty()).then_some((key, value))
            })
            .collect();
        Self { keys }
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("{ENV_PREFIX}* environment variable(s)"))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.keys {
            insert_at(&mut dict, &key.split('.').collect::<Vec<_>>(), value.clone());
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Puts `value` at the dotted `path` of `dict`, creating the tables on the way.
fn insert_at(dict: &mut Dict, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = dict.entry(first.to_string()).or_insert_with(|| Value::from(Dict::new()));
            if entry.as_dict().is_none() {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_at(inner, rest, value);
            }
        }
    }
}

/// A path from any scalar (`data_dir = 2024` from the environment is the folder `2024`).
fn path_from_scalar<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
    scalar_as_string(deserializer).map(PathBuf::from)
}

/// An optional path from any scalar.
fn optional_path_from_scalar<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    struct Scalar(#[serde(deserialize_with = "path_from_scalar")] PathBuf);
    Ok(Option::<Scalar>::deserialize(deserializer)?.map(|Scalar(path)| path))
}

fn flatten_figment_error(error: figment::Error) -> String {
    error.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads with `vars` as the environment (names without the prefix); the process
    /// environment is never read or written.
    fn load_with_env(toml_text: Option<&str>, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = toml_text.map(|text| {
            let path = dir.path().join("switchboard.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let vars = vars.iter().map(|(name, value)| (format!("{ENV_PREFIX}{name}"), value.to_string()));
        Settings::load_from(file.as_deref(), &Overrides::default(), vars)
    }

    #[test]
    fn defaults_serve_the_demo() {
        let settings = load_with_env(None, &[]).unwrap();
        assert_eq!(settings.server.addr, "127.0.0.1:8080");
        assert_eq!(settings.data_dir, PathBuf::from("./.switchboard"));
        assert_eq!(settings.knowledge.backend, "embedded");
        assert_eq!(settings.accounts.seed, "demo");
    }

    #[test]
    fn file_then_environment() {
        let text = "[server]\naddr = \"127.0.0.1:9000\"\n[whatsapp]\napp_secret = \"from-file\"\n";
        let settings = load_with_env(Some(text), &[("WHATSAPP__APP_SECRET", "from-env")]).unwrap();
        assert_eq!(settings.server.addr, "127.0.0.1:9000");
        assert_eq!(settings.whatsapp.app_secret.expose(), "from-env");
    }

    #[test]
    fn nested_keys_from_environment() {
        let settings = load_with_env(None, &[("KNOWLEDGE__QDRANT__COLLECTION", "kb"), ("DATA_DIR", "/tmp/x")]).unwrap();
        assert_eq!(settings.knowledge.qdrant.collection, "kb");
        assert_eq!(settings.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn numbers_booleans_and_lists_from_environment() {
        let vars = [
            ("CONSOLE__SESSION_MINUTES", "30"),
            ("CONSOLE__SECURE_COOKIES", "true"),
            ("DIALOGUE__MIN_SIMILARITY", "0.25"),
            ("SERVER__CORS_ORIGINS", "[\"https://a.example\", \"https://b.example\"]"),
            ("HOOKS__MAKE_PAYMENT__URL", "http://127.0.0.1:9/pay"),
            ("HOOKS__MAKE_PAYMENT__TIMEOUT_MS", "250"),
        ];
        let settings = load_with_env(None, &vars).unwrap();
        assert_eq!(settings.console.session_minutes, 30);
        assert!(settings.console.secure_cookies);
        assert_eq!(settings.dialogue.min_similarity, 0.25);
        assert_eq!(settings.server.cors_origins, vec!["https://a.example", "https://b.example"]);
        assert_eq!(settings.hooks["make_payment"].timeout_ms, 250);
        let error = load_with_env(None, &[("CONSOLE__SESSION_MINUTES", "soon")]).unwrap_err();
        assert!(error.to_string().contains("session_minutes"), "{error}");
    }

    /// Every string key of the tree (secrets and paths included), as dotted paths.
    fn string_keys(value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(fields) => {
                for (name, field) in fields {
                    let path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                    string_keys(field, &path, out);
                }
            }
            serde_json::Value::String(_) => out.push(path.to_string()),
            _ => {}
        }
    }

    #[test]
    fn every_string_key_takes_digits_from_the_environment() {
        let mut defaults = serde_json::to_value(Settings::default()).unwrap();
        // The optional paths and a hook table are strings when set.
        defaults["models"]["encoder_dir"] = "x".into();
        defaults["models"]["chat_gguf"] = "x".into();
        defaults["hooks"] = serde_json::json!({"make_payment": serde_json::to_value(HookSettings::default()).unwrap()});
        let mut keys = Vec::new();
        string_keys(&defaults, "", &mut keys);
        // Assurance levels and the storage backend are names from a fixed set, not free strings.
        keys.retain(|key| !key.starts_with("identity.requirements.") && key != "storage.backend");
        assert!(keys.len() >= 20, "{keys:?}");
        for key in keys {
            let name = key.to_uppercase().replace('.', "__");
            let settings = load_with_env(None, &[(&name, "106540352242922")])
                .unwrap_or_else(|error| panic!("{ENV_PREFIX}{name}=106540352242922: {error}"));
            let loaded = serde_json::to_value(&settings).unwrap();
            let pointer = format!("/{}", key.replace('.', "/"));
            let value = match loaded.pointer(&pointer) {
                Some(value) => value.clone(),
                // Secrets serialise as themselves; read them back through their accessor.
                None => panic!("{key} missing after loading"),
            };
            assert_eq!(value, serde_json::json!("106540352242922"), "{key}");
        }
        let settings = load_with_env(None, &[("WHATSAPP__PHONE_NUMBER_ID", "106540352242922")]).unwrap();
        assert_eq!(settings.whatsapp.phone_number_id, "106540352242922");
        let settings = load_with_env(None, &[("WHATSAPP__APP_SECRET", "123456"), ("WIDGET__SECRET", "true")]).unwrap();
        assert_eq!(settings.whatsapp.app_secret.expose(), "123456");
        assert_eq!(settings.widget.secret.expose(), "true");
    }

    #[test]
    fn unknown_key_is_an_error() {
        let error = load_with_env(Some("[server]\nadress = \"x\"\n"), &[]).unwrap_err();
        assert!(error.to_string().contains("adress"), "{error}");
    }

    #[test]
    fn other_variables_are_ignored() {
        let vars = [("PATH".to_string(), "/bin".to_string()), ("SWITCHBOARD_".to_string(), "x".to_string())];
        let settings = Settings::load_from(None, &Overrides::default(), vars).unwrap();
        assert_eq!(settings.server.addr, "127.0.0.1:8080");
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "\"***\"");
    }

    #[test]
    fn missing_file_is_an_error() {
        let error = Settings::load_from(Some(Path::new("/nonexistent/sb.toml")), &Overrides::default(), Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("not found"));
    }
}
