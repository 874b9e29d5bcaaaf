//! `switchboard serve`: the HTTP server. It listens at once (`/healthz`), and loads models
//! and indexes in the background (`/readyz` turns 200 when the assistant can answer).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context;

use crate::app;
use crate::channels::{Channels, EngineHandle};
use crate::config::Settings;
use crate::http::{self, AppState};

pub fn run(settings: Settings) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&settings.server.addr)
        .map_err(|error| crate::BadInput(format!("cannot listen on {}: {error}", settings.server.addr)))?;
    actix_web::rt::System::new().block_on(async move {
        let server = start(settings, listener)?;
        server.server.await.context("running the HTTP server")
    })
}

/// A started server: its address, its state and the future that runs it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub state: web::Data<AppState>,
    pub channels: web::Data<Channels>,
    pub handle: actix_web::dev::ServerHandle,
    pub server: actix_web::dev::Server,
}

/// Opens the stores, starts loading the engine in the background and binds the HTTP server.
/// Must be called inside an actix/tokio runtime.
pub fn start(settings: Settings, listener: TcpListener) -> anyhow::Result<Running> {
    let state = web::Data::new(app::open_state(settings)?);
    app::load_in_background(state.clone().into_inner());
    let engine_state = state.clone();
    let engine: EngineHandle = Arc::new(move || engine_state.readiness.engine().cloned());
    let channels = web::Data::new(Channels::start(&state.settings, &state.db, &state.conversations, engine)?);
    let addr = listener.local_addr()?;
    let server_state = state.clone();
    let server_channels = channels.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(server_state.clone())
            .app_data(server_channels.clone())
            .wrap(http::cors(&server_state.settings))
            .wrap(middleware::Logger::new("%r %s %Dms").log_target("switchboard::http"))
            .configure(http::configure)
    })
    .workers(2)
    .listen(listener)?
    .run();
    tracing::info!(%addr, "listening");
    Ok(Running { addr, state, channels, handle: server.handle(), server })
}

/// For tests and tools: the settings' engine, loaded in this thread.
pub fn state_for(settings: Settings) -> anyhow::Result<Arc<AppState>> {
    let state = Arc::new(app::open_state(settings)?);
    let engine = app::load_engine(&state)?;
    state.readiness.set_engine(Arc::new(engine));
    Ok(state)
}
