//! One `Settings` tree: defaults, then the TOML file (`--config`), then `SWITCHBOARD_*`
//! environment variables (`SWITCHBOARD_WHATSAPP__APP_SECRET` sets `whatsapp.app_secret`),
//! then the command line's `--data-dir`/`--models-dir`/`--addr`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// A secret string that never prints itself.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("\"\"") } else { f.write_str("\"***\"") }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where sled, indexes and trained models live.
    pub data_dir: PathBuf,
    /// Where fetched models live (shared by every checkout on the machine).
    pub models_dir: PathBuf,
    pub server: ServerSettings,
    pub models: ModelSettings,
    pub accounts: AccountSettings,
    pub knowledge: KnowledgeSettings,
    pub intents: IntentSettings,
    pub dialogue: DialogueSettings,
    pub staff: StaffSettings,
    pub whatsapp: WhatsAppSettings,
    pub widget: WidgetSettings,
    pub console: ConsoleSettings,
    /// Account actions mapped to the operator's HTTP endpoints, by action name.
    pub hooks: BTreeMap<String, HookSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./.switchboard"),
            models_dir: inference::fetch::default_models_dir(),
            server: ServerSettings::default(),
            models: ModelSettings::default(),
            accounts: AccountSettings::default(),
            knowledge: KnowledgeSettings::default(),
            intents: IntentSettings::default(),
            dialogue: DialogueSettings::default(),
            staff: StaffSettings::default(),
            whatsapp: WhatsAppSettings::default(),
            widget: WidgetSettings::default(),
            console: ConsoleSettings::default(),
            hooks: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub addr: String,
    /// Origins allowed to call the API from a browser (the widget's host pages); `*` allows any.
    pub cors_origins: Vec<String>,
    /// The public base URL, used in the widget snippet and in links; empty: derived from the request.
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
    pub encoder_dir: Option<PathBuf>,
    /// A Llama-architecture GGUF chat model; empty: the pinned default.
    pub chat_gguf: Option<PathBuf>,
    /// Turn the chat model off (answers are then purely extractive).
    pub chat_disabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountSettings {
    /// Account database (tau2 `db.toml` shape) loaded into an empty store at start;
    /// `demo` is the built-in demo seed.
    pub seed: String,
    /// The business date the account policy is checked against (`YYYY-MM-DD`); empty: the
    /// seed's `[meta] today`, else the machine's date.
    pub today: Option<chrono::NaiveDate>,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self { seed: "demo".into(), today: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// Folders ingested (incrementally) at start; `demo` is the built-in telco pack.
    pub dirs: Vec<String>,
    /// `embedded` (default) or `qdrant`.
    pub backend: String,
    pub qdrant: QdrantSettings,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        Self { dirs: vec!["demo".into()], backend: "embedded".into(), qdrant: QdrantSettings::default() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QdrantSettings {
    pub url: String,
    pub api_key: Secret,
    pub collection: String,
}

impl Default for QdrantSettings {
    fn default() -> Self {
        Self { url: "http://127.0.0.1:6334".into(), api_key: Secret::default(), collection: "switchboard".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntentSettings {
    /// Intent training data (YAML); `demo` is the built-in telco intent set.
    pub data: String,
}

impl Default for IntentSettings {
    fn default() -> Self {
        Self { data: "demo".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialogueSettings {
    /// Most new tokens the chat model may generate for one reply.
    pub max_new_tokens: usize,
    /// Passages retrieved for a knowledge answer.
    pub top_k: usize,
    /// Least cosine similarity of the best passage for a knowledge answer; below it the
    /// assistant says it does not know instead of quoting something unrelated.
    pub min_similarity: f32,
    /// The operator's name in replies.
    pub operator_name: String,
}

impl Default for DialogueSettings {
    fn default() -> Self {
        Self { max_new_tokens: 96, top_k: 5, min_similarity: 0.3, operator_name: "Kestrel Mobile".into() }
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
    pub phone_number_id: String,
    pub api_base_url: String,
    /// Template sent outside the 24-hour customer-service window.
    pub template_name: String,
    pub template_language: String,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Session lifetime in minutes.
    pub session_minutes: u64,
    /// Mark session cookies `Secure` (set when served behind TLS).
    pub secure_cookies: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self { session_minutes: 8 * 60, secure_cookies: false }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HookSettings {
    pub method: String,
    pub url: String,
    pub timeout_ms: u64,
    pub headers: BTreeMap<String, String>,
    /// Key for the HMAC-SHA256 signature of each delivery.
    pub secret: Secret,
    pub max_attempts: u32,
}

impl Default for HookSettings {
    fn default() -> Self {
        Self {
            method: "POST".into(),
            url: String::new(),
            timeout_ms: 5_000,
            headers: BTreeMap::new(),
            secret: Secret::default(),
            max_attempts: 4,
        }
    }
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
    /// Loads defaults, then `file`, then the environment, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::load_from(file, overrides, Env::prefixed("SWITCHBOARD_").split("__"))
    }

    fn load_from(file: Option<&Path>, overrides: &Overrides, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError(format!("config file {} not found", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        let mut settings: Settings =
            figment.merge(env).extract().map_err(|error| ConfigError(flatten_figment_error(error)))?;
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

fn flatten_figment_error(error: figment::Error) -> String {
    error.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with_env(toml_text: Option<&str>, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = toml_text.map(|text| {
            let path = dir.path().join("switchboard.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        // figment reads the process environment; use a unique prefix per test instead.
        let prefix = format!("SBTEST{}_", std::process::id() ^ vars.len() as u32 ^ rand::random::<u32>());
        for (key, value) in vars {
            // SAFETY-free: tests set variables under a unique prefix nobody else reads.
            unsafe_set_var(&format!("{prefix}{key}"), value);
        }
        let env = Env::prefixed(&prefix).split("__");
        Settings::load_from(file.as_deref(), &Overrides::default(), env)
    }

    #[allow(unsafe_code)]
    fn unsafe_set_var(key: &str, value: &str) {
        // Each test uses its own prefix, so no other thread reads these variables.
        unsafe { std::env::set_var(key, value) }
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
    fn unknown_key_is_an_error() {
        let error = load_with_env(Some("[server]\nadress = \"x\"\n"), &[]).unwrap_err();
        assert!(error.to_string().contains("adress"), "{error}");
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "\"***\"");
    }

    #[test]
    fn missing_file_is_an_error() {
        let error =
            Settings::load_from(Some(Path::new("/nonexistent/sb.toml")), &Overrides::default(), Env::prefixed("X_"))
                .unwrap_err();
        assert!(error.to_string().contains("not found"));
    }
}
