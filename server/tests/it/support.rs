//! A real server on 127.0.0.1 port 0 with a temporary data dir, and a small JSON client.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use server::config::Settings;

pub struct TestApp {
    pub addr: SocketAddr,
    pub handle: actix_web::dev::ServerHandle,
    pub state: actix_web::web::Data<server::http::AppState>,
    _data_dir: Option<tempfile::TempDir>,
    /// The thread running the server's actix system; joined by [`TestApp::stop`].
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestApp {
    /// Starts a server with default settings on a temporary data dir and waits until it is ready.
    pub fn spawn() -> TestApp {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::for_data_dir(data_dir.path());
        // Many tests share this server from one address; the limits have tests of their own.
        settings.limits = server::config::LimitSettings {
            requests_per_ip_per_minute: 0,
            messages_per_conversation_per_minute: 0,
            conversations_per_ip_per_hour: 0,
            ..Default::default()
        };
        let mut app = Self::spawn_with(settings);
        app._data_dir = Some(data_dir);
        app
    }

    /// Starts a server with the given settings (the caller owns the data dir) and waits until ready.
    pub fn spawn_with(settings: Settings) -> TestApp {
        let app = Self::start(settings);
        app.wait_ready(Duration::from_secs(600));
        app
    }

    /// Starts a server without waiting for readiness.
    pub fn start(settings: Settings) -> TestApp {
        inference::init_threads(inference::ThreadSettings::recommended());
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").expect("binding a port");
                // A server just stopped on the same data dir may still be letting go of sled's
                // lock (its last references drop as its threads end): wait for it.
                let started = Instant::now();
                let running = loop {
                    match server::commands::serve::start(settings.clone(), listener.try_clone().expect("listener")) {
                        Ok(running) => break running,
                        Err(error)
                            if format!("{error:#}").contains("lock") && started.elapsed() < Duration::from_secs(30) =>
                        {
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        Err(error) => panic!("starting the server: {error:#}"),
                    }
                };
                sender.send((running.addr, running.handle.clone(), running.state.clone())).unwrap();
                running.server.await.expect("server");
            })
        });
        let (addr, handle, state) = receiver.recv().expect("server started");
        TestApp { addr, handle, state, _data_dir: None, thread: Some(thread) }
    }

    pub fn wait_ready(&self, timeout: Duration) {
        let started = Instant::now();
        loop {
            let (status, body) = self.get("/readyz");
            if status == 200 {
                return;
            }
            assert!(body["status"] != "failed", "the server failed to start: {body}");
            assert!(started.elapsed() < timeout, "not ready after {timeout:?}: {body}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let response = client().get(self.url(path)).send().expect("GET");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = client().post(self.url(path)).json(body).send().expect("POST");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
        let response =
            client().post(self.url(path)).header("content-type", content_type).body(body).send().expect("POST");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    /// Creates a conversation and returns its id.
    pub fn new_conversation(&self) -> String {
        let (status, body) = self.post_json("/api/v1/conversations", &serde_json::json!({"channel": "web"}));
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// Sends a customer message and returns the turn.
    pub fn say(&self, conversation_id: &str, text: &str) -> Value {
        let (status, body) = self.post_json(
            &format!("/api/v1/conversations/{conversation_id}/messages"),
            &serde_json::json!({"text": text}),
        );
        assert_eq!(status, 200, "{text}: {body}");
        body
    }

    /// The texts the server sent so far (its demo outbox), oldest first.
    pub fn texts(&self) -> Vec<engine::identity::sms::OutboxSms> {
        engine::identity::Outbox::in_data_dir(&self.state.settings.data_dir).read()
    }

    /// The newest verification code texted to `number`.
    pub fn latest_code(&self, number: &str) -> Option<String> {
        let key = accounts::ids::phone_key(number);
        self.texts().into_iter().rev().filter(|text| accounts::ids::phone_key(&text.to) == key).find_map(|text| {
            text.text.split(|c: char| !c.is_ascii_digit()).find(|digits| digits.len() == 6).map(str::to_string)
        })
    }

    /// Types the newest code texted to `number` into the conversation; returns the turn.
    pub fn prove(&self, conversation_id: &str, number: &str) -> Value {
        let code = self.latest_code(number).unwrap_or_else(|| panic!("no code was texted to {number}"));
        self.say(conversation_id, &code)
    }

    pub fn stop(mut self) {
        let handle = self.handle.clone();
        futures_executor(handle.stop(true));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn futures_executor<F: std::future::Future>(future: F) -> F::Output {
    actix_web::rt::System::new().block_on(future)
}

pub fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| reqwest::blocking::Client::builder().timeout(Duration::from_secs(300)).build().unwrap())
}

/// One server shared by the tests of this binary that do not need their own.
pub fn shared() -> &'static TestApp {
    static APP: OnceLock<TestApp> = OnceLock::new();
    APP.get_or_init(TestApp::spawn)
}

/// Number of events in a conversation's log.
pub fn n_events(app: &TestApp, conversation_id: &str) -> usize {
    app.state.conversations.events(conversation_id).map(|events| events.len()).unwrap_or(0)
}

#[allow(dead_code)]
pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// The workspace root.
pub fn workspace_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// Debian's Chromium for the browser tests (`CHROMIUM_PATH` overrides). When it is missing and
/// the tests run as root on Debian (a fresh CI machine), it is installed with apt-get once.
fn chromium_path() -> std::path::PathBuf {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let path =
        std::env::var_os("CHROMIUM_PATH").map(std::path::PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    if !path.exists() && std::env::var_os("CHROMIUM_PATH").is_none() && exists(Path::new("/usr/bin/apt-get")) {
        INSTALLED.get_or_init(|| {
            let is_root = std::process::Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout == b"0\n");
            if is_root {
                let _ = std::process::Command::new("sh")
                    .args(["-c", "apt-get update -qq && apt-get install -y -qq chromium >/dev/null"])
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status();
            }
        });
    }
    assert!(
        path.exists(),
        "{} not found: install Debian's chromium (`apt-get install -y chromium`) or set CHROMIUM_PATH",
        path.display()
    );
    path
}

/// Installs playwright-core from the committed lock file when it is missing, once per test run
/// (two browser tests running at once must not both run `npm ci` in the same folder).
fn ensure_node_modules(e2e_dir: &Path) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if e2e_dir.join("node_modules/playwright-core/package.json").exists() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(e2e_dir)
        .status()
        .expect("running npm (Node.js and npm are needed for the browser tests)");
    assert!(status.success(), "npm ci failed in {}", e2e_dir.display());
}

/// Runs a browser spec of `web/e2e` (`node SPEC URL OUTPUT_DIR ARGS...`) against a running server
/// in Debian's Chromium, fails the test with its output when it fails, and returns the JSON of
/// its `RESULT ` line. Screenshots go to `target/test-output/<output>/`, returned too.
pub fn run_browser_spec(
    spec: &str,
    url: &str,
    output: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (serde_json::Value, std::path::PathBuf) {
    let chromium = chromium_path();
    let e2e_dir = workspace_dir().join("web/e2e");
    ensure_node_modules(&e2e_dir);
    let output_dir = workspace_dir().join("target/test-output").join(output);
    std::fs::create_dir_all(&output_dir).unwrap();
    let mut child = std::process::Command::new("node")
        .arg(e2e_dir.join(spec))
        .arg(url)
        .arg(&output_dir)
        .args(args)
        .envs(envs.iter().copied())
        .env("CHROMIUM_PATH", &chromium)
        .current_dir(&e2e_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running node");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20 * 60) {
            let _ = child.kill();
            panic!("the browser test did not finish in 20 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "the browser test failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    let result = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .map(|json| serde_json::from_str(json).unwrap())
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}"));
    (result, output_dir)
}

/// Checks that every message in a conversation's log was read only after the turn before it
/// replied (turns never overlapped); returns the number of messages.
pub fn assert_one_turn_at_a_time(events: &[engine::conversations::Event]) -> usize {
    let mut open_turn = false;
    let mut n_in = 0;
    for event in events {
        match &event.kind {
            engine::conversations::EventKind::MessageIn { .. } => {
                assert!(!open_turn, "a message was read before the previous turn replied: {:?}", event.kind);
                open_turn = true;
                n_in += 1;
            }
            engine::conversations::EventKind::Reply { .. } => open_turn = false,
            _ => {}
        }
    }
    assert!(!open_turn, "the last message was answered");
    n_in
}
