//! The operator's network APIs (CAMARA, the GSMA Open Gateway APIs): SIM Swap before a code is
//! texted or an account is changed, and Number Verification as a proof.
//!
//! Followed specifications (camaraproject on GitHub): SIM Swap `sim-swap.yaml` 2.1.0 (release
//! r3.3, `POST {api_root}/sim-swap/v2/check`), Number Verification
//! `number-verification.yaml` 2.1.0 (release r3.2, `POST {api_root}/number-verification/v2/verify`).
//! SIM Swap runs on a two-legged token (OAuth2 client credentials, scope `sim-swap:check`) with
//! the `phoneNumber` in the body; Number Verification on the three-legged token the customer's
//! phone obtained from the operator's authorization server on the mobile network.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The SIM Swap API's version in its base path.
pub const SIM_SWAP_PATH: &str = "/sim-swap/v2/check";
/// The Number Verification API's version in its base path.
pub const NUMBER_VERIFICATION_PATH: &str = "/number-verification/v2/verify";
/// The specification versions followed.
pub const SIM_SWAP_SPEC: &str = "CAMARA SIM Swap 2.1.0 (r3.3)";
pub const NUMBER_VERIFICATION_SPEC: &str = "CAMARA Number Verification 2.1.0 (r3.2)";

/// `[camara]`: where the operator's network APIs are and how to authenticate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CamaraSettings {
    /// The API root (`https://api.operator.example`); empty: no network APIs.
    #[serde(deserialize_with = "accounts::config::scalar_as_string")]
    pub base_url: String,
    /// The OAuth2 token endpoint.
    #[serde(deserialize_with = "accounts::config::scalar_as_string")]
    pub token_url: String,
    /// The OpenID Connect authorization endpoint (Number Verification's authorization code flow).
    #[serde(deserialize_with = "accounts::config::scalar_as_string")]
    pub authorize_url: String,
    #[serde(deserialize_with = "accounts::config::scalar_as_string")]
    pub client_id: String,
    pub client_secret: accounts::Secret,
    /// SIM swaps within this many hours block verification by code and changes (1 to 2400).
    pub sim_swap_max_age_hours: u32,
    /// Offer Number Verification as a proof on the web channel.
    pub number_verification: bool,
    /// Per request.
    pub timeout_ms: u64,
}

impl Default for CamaraSettings {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            token_url: String::new(),
            authorize_url: String::new(),
            client_id: String::new(),
            client_secret: accounts::Secret::default(),
            sim_swap_max_age_hours: 240,
            number_verification: false,
            timeout_ms: 5_000,
        }
    }
}

impl CamaraSettings {
    pub fn is_configured(&self) -> bool {
        !self.base_url.trim().is_empty()
    }
}

/// A network API that did not answer, or answered something else than its specification.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetworkError {
    #[error("the network API could not be reached: {0}")]
    Unreachable(String),
    #[error("the network API refused the request (status {status}, {code})")]
    Refused { status: u16, code: String },
    #[error("the network API answered something unexpected: {0}")]
    BadAnswer(String),
}

/// What the dialogue asks the network.
pub trait NetworkApi: Send + Sync {
    /// Whether the SIM of `phone_e164` was swapped within the configured hours.
    fn sim_swapped_recently(&self, phone_e164: &str) -> Result<bool, NetworkError>;
    /// Whether the phone holding `access_token` (three-legged, from the customer's phone) is
    /// `phone_e164`.
    fn number_verified(&self, access_token: &str, phone_e164: &str) -> Result<bool, NetworkError>;
    /// Exchanges an authorization code from the customer's phone for its access token.
    fn exchange_code(&self, code: &str, redirect_uri: &str) -> Result<String, NetworkError>;
}

/// The CAMARA client.
pub struct Camara {
    settings: CamaraSettings,
    client: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct CheckSimSwapInfo {
    swapped: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NumberVerificationMatchResponse {
    device_phone_number_verified: bool,
}

#[derive(Deserialize)]
struct ErrorInfo {
    #[serde(default)]
    code: String,
}

impl Camara {
    pub fn new(settings: CamaraSettings) -> Result<Self, NetworkError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_millis(settings.timeout_ms.max(1)))
            .build()
            .map_err(|error| NetworkError::Unreachable(error.to_string()))?;
        Ok(Self { settings, client, token: Mutex::new(None) })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url.trim_end_matches('/'))
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<TokenResponse, NetworkError> {
        let response = self
            .client
            .post(&self.settings.token_url)
            .basic_auth(&self.settings.client_id, Some(self.settings.client_secret.expose()))
            .form(form)
            .send()
            .await
            .map_err(|error| NetworkError::Unreachable(error.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(NetworkError::Refused { status: status.as_u16(), code: "token".into() });
        }
        response.json().await.map_err(|error| NetworkError::BadAnswer(format!("token: {error}")))
    }

    /// A two-legged token for SIM Swap, cached until a minute before it expires.
    async fn client_token(&self) -> Result<String, NetworkError> {
        if let Ok(cached) = self.token.lock()
            && let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let token = self.token(&[("grant_type", "client_credentials"), ("scope", "sim-swap:check")]).await?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(300).saturating_sub(60));
        if let Ok(mut cached) = self.token.lock() {
            *cached = Some((token.access_token.clone(), Instant::now() + lifetime));
        }
        Ok(token.access_token)
    }

    async fn post_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<T, NetworkError> {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .header("x-correlator", uuid::Uuid::new_v4().to_string())
            .json(body)
            .send()
            .await
            .map_err(|error| NetworkError::Unreachable(error.without_url().to_string()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|error| NetworkError::Unreachable(error.to_string()))?;
        if !status.is_success() {
            let code = serde_json::from_slice::<ErrorInfo>(&bytes).map(|e| e.code).unwrap_or_default();
            return Err(NetworkError::Refused { status: status.as_u16(), code });
        }
        serde_json::from_slice(&bytes).map_err(|error| NetworkError::BadAnswer(error.to_string()))
    }
}

fn block_on<T>(future: impl std::future::Future<Output = Result<T, NetworkError>>) -> Result<T, NetworkError> {
    accounts::hooks::block_on(future).map_err(|error| NetworkError::Unreachable(error.to_string()))?
}

impl NetworkApi for Camara {
    fn sim_swapped_recently(&self, phone_e164: &str) -> Result<bool, NetworkError> {
        let max_age = self.settings.sim_swap_max_age_hours.clamp(1, 2400);
        block_on(async {
            let token = self.client_token().await?;
            let body = serde_json::json!({"phoneNumber": phone_e164, "maxAge": max_age});
            let info: CheckSimSwapInfo = self.post_json(SIM_SWAP_PATH, &token, &body).await?;
            Ok(info.swapped)
        })
    }

    fn number_verified(&self, access_token: &str, phone_e164: &str) -> Result<bool, NetworkError> {
        block_on(async {
            let body = serde_json::json!({"phoneNumber": phone_e164});
            let answer: NumberVerificationMatchResponse =
                self.post_json(NUMBER_VERIFICATION_PATH, access_token, &body).await?;
            Ok(answer.device_phone_number_verified)
        })
    }

    fn exchange_code(&self, code: &str, redirect_uri: &str) -> Result<String, NetworkError> {
        block_on(async {
            let token = self
                .token(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)])
                .await?;
            Ok(token.access_token)
        })
    }
}
