//! Several `switchboard` processes (the built binary) on one PostgreSQL database, as behind a
//! load balancer: one conversation's messages alternate between instances, a stream on one sees
//! what another answered, turns of one conversation never overlap across instances, and a
//! `kill -9` of an instance in the middle of a stream of payments loses nothing it acknowledged
//! and doubles nothing. Needs `TEST_POSTGRES_URL` (CI starts a server); without it
//! these tests say they were skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::channels::SseClient;
use crate::support::client;

const STAFF_TOKEN: &str = "multi-instance-staff-token";

/// One server process with its own data dir (models and the knowledge index are per instance;
/// the state is in the shared database).
struct Instance {
    child: Option<Child>,
    base_url: String,
    data_dir: PathBuf,
}

impl Instance {
    /// Starts an instance on `database` and waits until it is ready. `seed` is the account data
    /// (imported by whichever instance finds the database empty first).
    fn start(dir: &Path, name: &str, database: &str, seed: &str) -> Instance {
        Self::start_with(dir, name, database, seed, "")
    }

    /// [`Instance::start`] with more configuration (whole TOML sections) appended.
    fn start_with(dir: &Path, name: &str, database: &str, seed: &str, extra: &str) -> Instance {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data_dir = dir.join(name);
        std::fs::create_dir_all(&data_dir).unwrap();
        // The first instance's trained intent model saves the others the training.
        let first_models = dir.join("a").join("models");
        if name != "a" && first_models.is_dir() {
            copy_dir(&first_models, &data_dir.join("models"));
        }
        let config = data_dir.join("switchboard.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\naddr = \"127.0.0.1:{port}\"\n\
                 [storage]\nbackend = \"postgres\"\n[storage.postgres]\nurl = \"{database}\"\npool_size = 8\nacquire_timeout_secs = 3\n\
                 [models]\nchat_disabled = true\n[knowledge]\ndirs = []\n\
                 [accounts]\nseed = \"{seed}\"\n[staff]\napi_token = \"{STAFF_TOKEN}\"\n\
                 [limits]\nrequests_per_ip_per_minute = 0\nmessages_per_conversation_per_minute = 0\n\
                 conversations_per_ip_per_hour = 0\n{extra}"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(data_dir.join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the switchboard binary runs");
        let mut instance = Instance { child: Some(child), base_url: format!("http://127.0.0.1:{port}"), data_dir };
        let started = Instant::now();
        loop {
            if client().get(instance.url("/readyz")).send().is_ok_and(|r| r.status().is_success()) {
                return instance;
            }
            if let Some(status) = instance.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("instance {name} exited ({status}): {}", instance.log());
            }
            assert!(started.elapsed() < Duration::from_secs(600), "instance {name} did not get ready");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }

    fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), reqwest::Error> {
        let response = client().post(self.url(path)).bearer_auth(STAFF_TOKEN).json(body).send()?;
        let status = response.status().as_u16();
        Ok((status, response.json().unwrap_or(Value::Null)))
    }

    fn new_conversation(&self) -> String {
        let (status, body) = self.post("/api/v1/conversations", &json!({"channel": "web"})).unwrap();
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    fn say(&self, id: &str, text: &str) -> Value {
        let (status, body) =
            self.post(&format!("/api/v1/conversations/{id}/messages"), &json!({"text": text})).unwrap();
        assert_eq!(status, 200, "{text}: {body}");
        body
    }

    /// `kill -9`: no shutdown, no flush, connections dropped.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The newest code texted to `number` by any of `instances` (each writes its own demo outbox).
fn latest_code(instances: &[&Instance], number: &str) -> String {
    let key = accounts::ids::phone_key(number);
    instances
        .iter()
        .flat_map(|instance| engine::identity::Outbox::in_data_dir(&instance.data_dir).read())
        .filter(|text| accounts::ids::phone_key(&text.to) == key)
        .max_by_key(|text| text.at)
        .and_then(|text| text.text.split(|c: char| !c.is_ascii_digit()).find(|d| d.len() == 6).map(str::to_string))
        .unwrap_or_else(|| panic!("no code was texted to {number}"))
}

/// The shared database, opened from the test as a third instance would.
fn database(settings: &storage::PostgresSettings) -> storage::Store {
    storage::Store::postgres(settings).expect("the test database")
}

fn action_names(turn: &Value) -> Vec<String> {
    turn["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn one_conversation_moves_between_instances_and_every_stream_sees_every_reply() {
    let Some(settings) = storage::testing::fresh_database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = Instance::start(dir.path(), "a", &settings.url, "demo");
    let b = Instance::start(dir.path(), "b", &settings.url, "demo");

    let id = a.new_conversation();
    let stream = SseClient::open(&a.url(&format!("/api/v1/conversations/{id}/stream")), &[]).unwrap();
    stream.until("ready", Duration::from_secs(30));

    // Each message lands on the other instance; each reply continues where the last left off.
    let turn = b.say(&id, "I'd like to add data to my line");
    assert_eq!(turn["awaiting"], "phone_number", "{turn}");
    let turn = a.say(&id, "555-010-2008");
    assert_eq!(turn["awaiting"], "verification_code", "{turn}");
    let code = latest_code(&[&a, &b], "555-010-2008");
    let turn = b.say(&id, &code);
    assert_eq!(turn["awaiting"], "data_gb", "the code texted by one instance proves it on another: {turn}");
    let turn = a.say(&id, "1 GB");
    assert_eq!(turn["awaiting"], "confirmation", "{turn}");

    // The stream opened on A carries the replies B made, in order.
    let mut replies = Vec::new();
    while replies.len() < 4 {
        let events = stream.until("turn", Duration::from_secs(30));
        replies.push(events.last().unwrap().json());
    }
    let awaited: Vec<&str> = replies.iter().map(|turn| turn["awaiting"].as_str().unwrap_or("")).collect();
    assert_eq!(awaited, ["phone_number", "verification_code", "data_gb", "confirmation"], "{replies:#?}");

    // Two yeses at the same moment, one to each instance: the refuel runs once.
    let turns = std::thread::scope(|scope| {
        let on_a = scope.spawn(|| a.say(&id, "yes"));
        let on_b = scope.spawn(|| b.say(&id, "yes please"));
        [on_a.join().unwrap(), on_b.join().unwrap()]
    });
    let ran: usize = turns.iter().map(|turn| action_names(turn).iter().filter(|n| *n == "refuel_data").count()).sum();
    assert_eq!(ran, 1, "{turns:#?}");

    // Twenty messages at once, spread over both instances: one turn at a time.
    let texts = ["hello", "what's my balance?", "thanks", "ok"].repeat(5);
    let turns: Vec<Value> = std::thread::scope(|scope| {
        let threads: Vec<_> = texts
            .iter()
            .enumerate()
            .map(|(n, text)| {
                let instance = if n % 2 == 0 { &a } else { &b };
                let id = &id;
                scope.spawn(move || instance.say(id, text))
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().unwrap()).collect()
    });
    assert!(turns.iter().all(|turn| !turn["reply"].as_str().unwrap().is_empty()), "{turns:#?}");
    let conversations = engine::conversations::ConversationStore::open(&database(&settings)).unwrap();
    let events = conversations.events(&id).unwrap();
    let n_in = crate::support::assert_one_turn_at_a_time(&events);
    assert_eq!(n_in, 4 + 2 + 20, "every message was logged once");
    let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>(), "one log, no gaps, no duplicates");
}

#[test]
fn killing_an_instance_mid_payments_loses_nothing_acknowledged_and_doubles_nothing() {
    let Some(settings) = storage::testing::fresh_database() else { return };
    const N: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("accounts.toml");
    std::fs::write(&seed, crate::accounts_crash::stream_data(N).to_toml_string().unwrap()).unwrap();
    let seed = seed.display().to_string();
    let mut a = Instance::start(dir.path(), "a", &settings.url, &seed);
    let b = Instance::start(dir.path(), "b", &settings.url, &seed);

    // A load balancer's client: each request goes to A until A dies, then to B, with the same
    // idempotency key (a retry after no answer).
    let run = |instance: &Instance, action: &str, i: usize, key: &str| {
        let body = json!({"customer_id": format!("C{i:05}"), "bill_id": format!("B{i:05}"), "idempotency_key": key});
        instance.post(&format!("/api/v1/staff/actions/{action}"), &body)
    };
    let mut acknowledged = BTreeMap::new();
    let mut on_b = false;
    for i in 0..N {
        if i == N / 3 {
            a.kill(); // in the middle of the stream, between two acknowledged payments or not
        }
        for (action, key) in [("send_payment_request", format!("request-{i}")), ("make_payment", format!("pay-{i}"))] {
            let answer = if on_b { run(&b, action, i, &key) } else { run(&a, action, i, &key) };
            let (status, body) = match answer {
                Ok(answer) => answer,
                Err(_) => {
                    on_b = true;
                    run(&b, action, i, &key).expect("the surviving instance answers")
                }
            };
            assert_eq!(status, 200, "{action} {i}: {body}");
            if action == "make_payment" {
                acknowledged.insert(i, body["payment_id"].as_str().expect("a receipt").to_string());
            }
        }
    }
    assert!(on_b, "the stream moved to the surviving instance");

    let store = accounts::AccountStore::open(&database(&settings)).unwrap();
    let snapshot = store.snapshot().unwrap();
    for i in 0..N {
        let bill_id = format!("B{i:05}");
        let payments: Vec<_> = snapshot.payments.values().filter(|p| p.bill_id.as_str() == bill_id).collect();
        assert_eq!(payments.len(), 1, "bill {bill_id} paid exactly once: {payments:?}");
        assert_eq!(payments[0].payment_id.as_str(), acknowledged[&i], "the acknowledged payment is the one stored");
        let bill = snapshot.bills.values().find(|bill| bill.bill_id.as_str() == bill_id).unwrap();
        assert_eq!(format!("{:?}", bill.status), "Paid", "{bill_id}");
        let audit = store.audit_for_customer(&bill.customer_id).unwrap();
        let paid = audit.iter().filter(|entry| entry.action == "make_payment").count();
        assert_eq!(paid, 1, "one audit entry for the payment of {bill_id}");
    }
    assert_eq!(acknowledged.len(), N);
}

#[test]
fn whatsapp_jobs_of_a_killed_instance_are_answered_once_by_another() {
    use crate::channels::{ACCESS_TOKEN, APP_SECRET, GraphStandIn, PHONE_NUMBER_ID, VERIFY_TOKEN};
    let Some(settings) = storage::testing::fresh_database() else { return };
    let graph = GraphStandIn::start();
    let whatsapp = format!(
        "[whatsapp]\nverify_token = \"{VERIFY_TOKEN}\"\napp_secret = \"{APP_SECRET}\"\naccess_token = \"{ACCESS_TOKEN}\"\n\
         phone_number_id = \"{PHONE_NUMBER_ID}\"\napi_base_url = \"{}/v21.0\"\njob_lease_secs = 3\nworkers = 2\n",
        graph.base_url
    );
    let dir = tempfile::tempdir().unwrap();
    let mut a = Instance::start_with(dir.path(), "a", &settings.url, "demo", &whatsapp);
    let b = Instance::start_with(dir.path(), "b", &settings.url, "demo", &whatsapp);

    let numbers: Vec<String> = (0..12).map(|i| format!("155500088{i:02}")).collect();
    for (i, number) in numbers.iter().enumerate() {
        let notification = crate::whatsapp::text(number, &format!("wamid.multi{i}"), "hello");
        let (status, ..) = crate::whatsapp::post_signed_to(&a.url("/webhooks/whatsapp"), &notification);
        assert_eq!(status, 200, "acknowledged");
    }
    // A dies at once after its last 200, whatever its workers were doing; B takes the jobs over
    // once their leases end.
    a.kill();
    for number in &numbers {
        graph.wait_for(number, 1, Duration::from_secs(120));
    }
    std::thread::sleep(Duration::from_secs(4)); // longer than a lease: any second answer would be out
    let counts: Vec<usize> =
        numbers.iter().map(|number| graph.to(number).iter().filter(|r| r.status == 200).count()).collect();
    // A message Meta accepted in the instant before the kill, before its record, goes out again:
    // at most one per worker of the killed instance. Nothing else is sent twice.
    let twice = counts.iter().filter(|&&n| n == 2).count();
    assert!(counts.iter().all(|&n| n == 1 || n == 2), "{counts:?}");
    assert!(twice <= 2, "{twice} numbers answered twice: {counts:?}");
    // Every message was read once (a logged answer is sent, not answered again).
    let conversations = engine::conversations::ConversationStore::open(&database(&settings)).unwrap();
    let mut n_read = 0;
    for number in &numbers {
        let conversation =
            conversations.find_external(engine::conversations::Channel::Whatsapp, number).unwrap().unwrap();
        n_read += conversations
            .events(&conversation.id)
            .unwrap()
            .iter()
            .filter(|event| matches!(event.kind, engine::conversations::EventKind::MessageIn { .. }))
            .count();
    }
    assert!((12..=14).contains(&n_read), "{n_read} messages read for 12 sent");
    drop(b);
}

/// A TCP relay to the database that can be cut (all connections dropped, new ones refused) and
/// restored: the database going away under a running instance.
struct Relay {
    port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Relay {
    fn start(target: std::net::SocketAddr) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (open_here, generation_here) = (open.clone(), generation.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !open_here.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let Ok(server) = std::net::TcpStream::connect(target) else { continue };
                let born = generation_here.load(Ordering::SeqCst);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    let (open, generation) = (open_here.clone(), generation_here.clone());
                    from.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buffer = [0u8; 16 * 1024];
                        loop {
                            if !open.load(Ordering::SeqCst) || generation.load(Ordering::SeqCst) != born {
                                let _ = from.shutdown(std::net::Shutdown::Both);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                            match from.read(&mut buffer) {
                                Ok(0) => {
                                    let _ = to.shutdown(std::net::Shutdown::Write);
                                    return;
                                }
                                Ok(n) => {
                                    if to.write_all(&buffer[..n]).is_err() {
                                        return;
                                    }
                                }
                                Err(error)
                                    if matches!(
                                        error.kind(),
                                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => return,
                            }
                        }
                    });
                }
            }
        });
        Relay { port, open, generation }
    }

    fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_lost_database_is_503_with_retry_after_and_nothing_is_acknowledged() {
    use crate::channels::{APP_SECRET, VERIFY_TOKEN};
    let Some(settings) = storage::testing::fresh_database() else { return };
    // The instance reaches the database through a relay the test can cut.
    let target = settings.url.split('@').nth(1).and_then(|rest| rest.split('/').next()).unwrap().to_string();
    let target: std::net::SocketAddr = target.parse().expect("the test database is at an IP address and port");
    let relay = Relay::start(target);
    let relayed = settings.url.replace(&target.to_string(), &format!("127.0.0.1:{}", relay.port));
    let whatsapp = format!("[whatsapp]\nverify_token = \"{VERIFY_TOKEN}\"\napp_secret = \"{APP_SECRET}\"\n");
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::start_with(dir.path(), "a", &relayed, "demo", &whatsapp);
    let id = instance.new_conversation();
    assert_eq!(instance.say(&id, "hello")["reply"].as_str().map(str::is_empty), Some(false));

    relay.cut();
    let response = client()
        .post(instance.url(&format!("/api/v1/conversations/{id}/messages")))
        .json(&json!({"text": "hi again"}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 503, "{:?}", response.text());
    let response = client()
        .post(instance.url(&format!("/api/v1/conversations/{id}/messages")))
        .json(&json!({"text": "hi again"}))
        .send()
        .unwrap();
    assert!(response.headers().contains_key("retry-after"), "{:?}", response.headers());
    let body: Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let ready = client().get(instance.url("/readyz")).send().unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    // A WhatsApp notification is not acknowledged: Meta will send it again.
    let notification = crate::whatsapp::text("15550009901", "wamid.lost-db", "hello");
    let (status, ..) = crate::whatsapp::post_signed_to(&instance.url("/webhooks/whatsapp"), &notification);
    assert_eq!(status, 503);
    assert_eq!(client().get(instance.url("/healthz")).send().unwrap().status().as_u16(), 200, "the process lives on");

    relay.restore();
    let started = Instant::now();
    while client().get(instance.url("/readyz")).send().unwrap().status().as_u16() != 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "ready again once the database is back");
        std::thread::sleep(Duration::from_millis(200));
    }
    // As a client told `Retry-After` does: a request may still meet a connection the outage
    // broke (it is replaced), so it is sent again until it is answered.
    let retried = |send: &dyn Fn() -> u16| {
        let started = Instant::now();
        loop {
            let status = send();
            if status != 503 || started.elapsed() > Duration::from_secs(30) {
                return status;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    let status = retried(&|| {
        let url = instance.url(&format!("/api/v1/conversations/{id}/messages"));
        client().post(url).json(&json!({"text": "hello again"})).send().unwrap().status().as_u16()
    });
    assert_eq!(status, 200, "answered again once the database is back");
    let status = retried(&|| crate::whatsapp::post_signed_to(&instance.url("/webhooks/whatsapp"), &notification).0);
    assert_eq!(status, 200, "the resent notification is taken once the database is back");
}
