//! The web widget's routes: `GET /widget.js` (the embeddable script, with validators and a
//! short cache lifetime so a new release reaches host pages quickly) and `GET /` (the demo page
//! of the fictional operator, rendered with askama, with the widget on it).

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use accounts::AccountsData;
use accounts::domain::Plan;
use engine::dialogue::facts::format_gb;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(get_demo_page))
        .route("/widget.js", web::get().to(get_widget_js))
        .route("/demo/sms", web::get().to(get_demo_sms));
}

/// How long browsers may use `widget.js` before revalidating it (by its ETag).
const WIDGET_MAX_AGE_SECONDS: u32 = 300;

fn widget_etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| {
        let digest = Sha256::digest(::web::widget::widget_js().as_bytes());
        format!("\"{}\"", hex::encode(&digest[..12]))
    })
}

/// The embeddable widget script.
#[utoipa::path(
    get,
    path = "/widget.js",
    tag = "widget",
    responses(
        (status = 200, description = "the widget script", content_type = "text/javascript", body = String),
        (status = 304, description = "not modified (If-None-Match)"),
    )
)]
pub async fn get_widget_js(request: HttpRequest) -> HttpResponse {
    let etag = widget_etag();
    let cache_control = format!("public, max-age={WIDGET_MAX_AGE_SECONDS}, must-revalidate");
    let matches = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    if matches {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache_control))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(::web::widget::widget_js())
}

/// The demo page of the fictional operator with the widget.
#[utoipa::path(
    get,
    path = "/",
    tag = "widget",
    responses((status = 200, description = "the demo page", content_type = "text/html", body = String))
)]
pub async fn get_demo_page(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.limits.request(&request)?;
    let settings = &state.settings;
    let public_url = if settings.server.public_url.trim().is_empty() {
        let info = request.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    } else {
        settings.server.public_url.trim_end_matches('/').to_string()
    };
    let operator_name = settings.dialogue.operator_name.clone();
    let widget_title = format!("{operator_name} help");
    let widget_color = "#0b6e4f".to_string();
    let snippet = format!(
        "<script src=\"{public_url}/widget.js\" data-title=\"{widget_title}\" data-color=\"{widget_color}\"></script>"
    );
    let plans = match state.readiness.engine() {
        Some(engine) => engine.registry().store().plans().unwrap_or_default(),
        None => demo_plans(),
    };
    let page = ::web::widget::DemoPage {
        operator_name,
        widget_src: "/widget.js".into(),
        widget_title,
        widget_color,
        snippet,
        plans: plans.iter().map(plan_card).collect(),
    };
    let html = page.render_html().map_err(|error| ApiError::internal("rendering the demo page failed", &error))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ))
        .body(html))
}

/// The demo's outbox: every text message the demo would have sent (verification codes), newest
/// first. Only without an SMS gateway (`[sms] url` empty); with one, there is no such page.
#[utoipa::path(
    get,
    path = "/demo/sms",
    tag = "widget",
    responses(
        (status = 200, description = "the demo's text messages (HTML)", content_type = "text/html", body = String),
        (status = 404, description = "an SMS gateway is configured", body = super::error::ErrorBody),
        (status = 429, description = "too many requests from this address", body = super::error::ErrorBody),
    )
)]
pub async fn get_demo_sms(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.limits.request(&request)?;
    let settings = &state.settings;
    if !settings.sms.url.trim().is_empty() {
        return Err(ApiError::not_found("texts go to the operator's SMS gateway"));
    }
    let outbox = engine::identity::Outbox::in_data_dir(&settings.data_dir);
    let texts = outbox
        .read()
        .into_iter()
        .rev()
        .map(|text| ::web::widget::SmsRow {
            to: text.to,
            text: text.text,
            at: text.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        })
        .collect();
    let page = ::web::widget::DemoSmsPage { operator_name: settings.dialogue.operator_name.clone(), texts };
    let html = page.render_html().map_err(|error| ApiError::internal("rendering the outbox page failed", &error))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .body(html))
}

/// The demo seed's plans, for a page served before the account store is open.
fn demo_plans() -> Vec<Plan> {
    static PLANS: OnceLock<Vec<Plan>> = OnceLock::new();
    PLANS
        .get_or_init(|| {
            AccountsData::from_toml_str(prompts::DEMO_ACCOUNTS)
                .map(|data| data.plans.into_values().collect())
                .unwrap_or_default()
        })
        .clone()
}

fn plan_card(plan: &Plan) -> ::web::widget::PlanCard {
    let gb = plan.data_limit.to_gb();
    ::web::widget::PlanCard {
        name: plan.name.clone(),
        price: plan.price_per_month.to_string(),
        allowance: if gb >= 999.0 { "Unlimited".into() } else { format!("{} GB", format_gb(gb)) },
        refuel: format!("{} per GB", plan.refuel_price_per_gb),
    }
}
