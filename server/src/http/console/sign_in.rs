//! Signing in and out of the console, and its static assets.

use super::*;

pub(super) fn login_page(
    state: &AppState,
    csrf_token: String,
    name: String,
    error: Option<String>,
    notice: Option<String>,
) -> Result<String, ConsoleError> {
    pages::LoginPage { operator_name: state.settings.dialogue.operator_name.clone(), csrf_token, name, error, notice }
        .render_html()
        .map_err(|error| ConsoleError::internal("rendering the sign-in page failed", &error))
}

/// A sign-in page with a fresh double-submit token.
pub(super) fn login_response(
    request: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    name: String,
    error: Option<String>,
    notice: Option<String>,
) -> Reply {
    let csrf_token = hex::encode(rand::random::<[u8; 16]>());
    let html = login_page(state, csrf_token.clone(), name, error, notice)?;
    let mut response = with_page_headers(HttpResponse::build(status));
    response.cookie(cookie(LOGIN_CSRF_COOKIE, csrf_token, 3600, secure_cookies(request, state)));
    Ok(response.body(html))
}

pub(super) async fn get_login(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    if signed_in(&request, &state).is_ok() {
        return Ok(redirect("/console"));
    }
    let notice = request.query_string().contains("signed_out").then(|| "You are signed out.".to_string());
    login_response(&request, &state, StatusCode::OK, String::new(), None, notice)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn post_login(request: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Reply {
    let form: LoginForm = match parse_form(&body) {
        Ok(form) => form,
        Err(_) => {
            return login_response(
                &request,
                &state,
                StatusCode::BAD_REQUEST,
                String::new(),
                Some("The form was malformed; please try again.".into()),
                None,
            );
        }
    };
    let name: String = form.name.chars().take(64).collect();
    let cookie_token = request.cookie(LOGIN_CSRF_COOKIE).map(|cookie| cookie.value().to_string()).unwrap_or_default();
    let csrf_ok = !cookie_token.is_empty() && bool::from(cookie_token.as_bytes().ct_eq(form.csrf.as_bytes()));
    if !csrf_ok {
        let message = "The sign-in form expired or did not come from this site; please sign in again.";
        return login_response(&request, &state, StatusCode::FORBIDDEN, name, Some(message.into()), None);
    }
    let console = open_console(&state)?;
    let password = form.password;
    let raw_name = form.name;
    let result = web::block(move || console.sign_in(&raw_name, &password))
        .await
        .map_err(|error| ConsoleError::internal("signing in failed", &error))?;
    match result {
        Ok(sign_in) => {
            tracing::info!(agent = %sign_in.session.agent, "console sign-in");
            let secure = secure_cookies(&request, &state);
            let lifetime = (sign_in.session.expires_at - sign_in.session.created_at).num_seconds();
            let mut expired_login = cookie(LOGIN_CSRF_COOKIE, String::new(), 0, secure);
            expired_login.make_removal();
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/console"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .cookie(cookie(SESSION_COOKIE, sign_in.token.as_str().to_string(), lifetime, secure))
                .cookie(expired_login)
                .finish())
        }
        Err(Error::LockedOut { retry_after_seconds }) => {
            let message = format!("Too many wrong passwords. Try again in {retry_after_seconds} seconds.");
            let mut response =
                login_response(&request, &state, StatusCode::TOO_MANY_REQUESTS, name, Some(message), None)?;
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after_seconds));
            Ok(response)
        }
        Err(Error::WrongCredentials) => login_response(
            &request,
            &state,
            StatusCode::UNAUTHORIZED,
            name,
            Some("Wrong name or password.".into()),
            None,
        ),
        Err(error) => Err(error.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

pub(super) async fn post_logout(request: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Reply {
    let form: CsrfForm = parse_form(&body).unwrap_or(CsrfForm { csrf: String::new() });
    let signed_in = signed_in_with_csrf(&request, &state, Some(&form.csrf)).map_err(|e| e.into_page(&state))?;
    if let Some(token) = session_token(&request) {
        signed_in.console.sessions().end(&token)?;
    }
    let mut removal = cookie(SESSION_COOKIE, String::new(), 0, secure_cookies(&request, &state));
    removal.make_removal();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/login?signed_out"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(removal)
        .finish())
}

pub(super) async fn get_console_js() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(pages::CONSOLE_JS)
}

pub(super) async fn get_console_css() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(pages::CONSOLE_CSS)
}
