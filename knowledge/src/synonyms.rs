//! Default query synonyms for telecom customer service.
//!
//! Customers rarely use the operator's words ("invoice" for *bill*, "freeze my line" for
//! *suspend*, "top up" for *refuel*). The lexical search adds the other words of a query
//! word's group at a lower weight; the vector search needs no help with these.

/// Groups of interchangeable words (single words; matched after stemming).
pub const TELECOM_SYNONYMS: &[&[&str]] = &[
    &["bill", "invoice", "statement"],
    &["due", "deadline"],
    &["fee", "penalty", "surcharge"],
    &["price", "cost"],
    &["cheap", "cheapest", "inexpensive", "affordable"],
    &["suspend", "suspension", "suspended", "freeze", "pause", "block", "blocked", "disconnect"],
    &["resume", "unblock", "unsuspend", "reconnect", "reconnection", "restore", "reactivate"],
    &["refuel", "topup", "recharge"],
    &["gb", "gigabyte", "gigabytes", "gig", "gigs"],
    &["data", "internet"],
    &["roaming", "abroad", "overseas", "international", "travel", "travelling", "traveling", "trip"],
    &["cancel", "terminate", "termination", "quit"],
    &["contract", "agreement", "commitment"],
    &["refund", "reimburse", "reimbursement"],
    &["credit", "compensation"],
    &["outage", "disruption", "downtime"],
    &["phone", "handset", "device", "cellphone", "smartphone"],
    &["plan", "tariff", "package", "bundle", "subscription"],
    &["autopay", "automatic"],
    &["extension", "deferral", "postpone", "delay"],
    &["dispute", "contest", "overcharged"],
    &["agent", "human", "person", "representative", "operator"],
    &["hotspot", "tether", "tethering"],
    &["signal", "coverage", "reception", "bars"],
    &["carrier", "provider"],
    &["verify", "verification", "identify", "identity", "authenticate"],
    &["text", "sms"],
    &["mms", "picture", "photo", "photos"],
    &["store", "shop"],
    &["late", "overdue"],
    &["pay", "payment"],
    &["hacked", "compromised", "fraud", "scam"],
    &["close", "closing", "cancel"],
];
