//! Reading what the customer reports from their phone.
//!
//! The assistant cannot touch the phone: it asks the customer to look at something
//! (`check_status_bar`, `run_speed_test`, ...) and the customer answers in their own words or
//! pastes what the screen says. [`read`] turns that answer into the outcome a troubleshooting
//! step branches on. Each check has a small fixed set of outcomes; anything it cannot read is
//! `unclear` (the flows send it down the default branch).

use std::sync::LazyLock;

use regex::Regex;

use super::state::is_device_check;

pub const UNCLEAR: &str = "unclear";

/// The outcome of a device step, from the customer's answer. `field` picks what to look for
/// in checks that report several things (`check_network_status`: `airplane_mode`,
/// `mobile_data`, `data_roaming`).
pub fn read(tool: &str, field: Option<&str>, answer: &str) -> &'static str {
    if !is_device_check(tool) {
        return "done";
    }
    let text = normalise(answer);
    match tool {
        "check_status_bar" => status_bar(&text),
        "check_network_status" => match field.unwrap_or("airplane_mode") {
            "mobile_data" => on_off(switch_state(&text, &["mobile data", "cellular data", "data enabled", "data"])),
            "data_roaming" => on_off(switch_state(&text, &["data roaming", "roaming"])),
            _ => on_off(switch_state(&text, &["airplane mode", "airplane", "flight mode"])),
        },
        "check_sim_status" => sim_status(&text),
        "run_speed_test" => speed(&text),
        "check_data_restriction_status" => on_off(switch_state(&text, &["data saver", "saver", "restrict"])),
        "check_network_mode_preference" => network_mode(&text),
        "check_vpn_status" => on_off(switch_state(&text, &["vpn"])),
        "check_wifi_calling_status" => on_off(switch_state(&text, &["wi-fi calling", "wifi calling", "calling"])),
        "can_send_mms" => yes_no(&text),
        "check_app_permissions" | "check_app_status" => messaging_permissions(&text),
        "check_apn_settings" => apn(&text),
        _ => UNCLEAR,
    }
}

fn normalise(answer: &str) -> String {
    answer.to_lowercase().replace(['_', '\u{2019}'], " ").replace("wifi", "wi-fi")
}

static NEGATIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(off|disabled?|inactive|not (?:on|enabled|active|connected|turned on|allowed|granted)|disconnected|false|no|none|isn'?t on|is not on|turned off|deactivated|not connected|denied|blocked|missing)\b").unwrap()
});
static POSITIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(on|enabled?|active|activated|connected|true|yes|turned on|allowed|granted)\b").unwrap()
});

/// Whether a switch named by one of `names` is reported on (`Some(true)`) or off.
pub fn switch_state(text: &str, names: &[&str]) -> Option<bool> {
    for name in names {
        let mut search_from = 0;
        while let Some(found) = text[search_from..].find(name) {
            let start = search_from + found;
            let end = start + name.len();
            search_from = end;
            // "No VPN is connected", "without data saver": a negation right before the name.
            let last_word_before = text[..start].split_whitespace().last().unwrap_or("");
            if matches!(last_word_before, "no" | "not" | "without") {
                return Some(false);
            }
            // The words right after the name, up to a separator, say its state ("Airplane mode: ON").
            let after: String = text[end..].chars().take(40).collect();
            let clause = after.split(['|', ',', ';', '.', '\n']).next().unwrap_or("");
            if let Some(state) = state_in(clause) {
                return Some(state);
            }
            // Else the words right before it ("airplane mode is on" was handled; "no vpn", "turned off data saver").
            let before: String = text[..start].chars().rev().take(25).collect::<String>().chars().rev().collect();
            let clause = before.rsplit(['|', ',', ';', '.', '\n']).next().unwrap_or("");
            if let Some(state) = state_in(clause) {
                return Some(state);
            }
        }
    }
    None
}

fn state_in(clause: &str) -> Option<bool> {
    // "Mobile Data Enabled: No", "data_enabled = False": the value after the separator decides.
    if let Some(idx) = clause.find([':', '=']) {
        let value = &clause[idx + 1..];
        if let Some(state) = plain_state(value) {
            return Some(state);
        }
    }
    plain_state(clause)
}

fn plain_state(clause: &str) -> Option<bool> {
    let negative = NEGATIVE.find(clause).map(|m| m.start());
    let positive = POSITIVE.find(clause).map(|m| m.start());
    match (negative, positive) {
        (Some(n), Some(p)) => Some(p < n && !clause[..n].contains("not")),
        (Some(_), None) => Some(false),
        (None, Some(_)) => Some(true),
        (None, None) => None,
    }
}

fn on_off(state: Option<bool>) -> &'static str {
    match state {
        Some(true) => "on",
        Some(false) => "off",
        None => UNCLEAR,
    }
}

fn status_bar(text: &str) -> &'static str {
    let airplane_named = text.contains("airplane") || text.contains("flight mode") || text.contains('✈');
    if airplane_named && switch_state(text, &["airplane mode", "airplane", "flight mode"]) != Some(false) {
        return "airplane";
    }
    static NO_SIGNAL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"no (signal|service|bars|network|reception)|emergency calls? only|sos only|\b0 bars|zero bars|searching|x over|signal: none|signal strength: none").unwrap()
    });
    if NO_SIGNAL.is_match(text) {
        return "no_signal";
    }
    static DATA_OFF: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"data (disabled|off)|mobile data: off|no data icon").unwrap());
    if DATA_OFF.is_match(text) {
        return "data_off";
    }
    static SIGNAL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b([1-5] bars?|bars|full signal|signal|lte|5g|4g|3g|2g|excellent|good|fair|poor|connected|📶)")
            .unwrap()
    });
    if SIGNAL.is_match(text) { "ok" } else { UNCLEAR }
}

fn sim_status(text: &str) -> &'static str {
    static MISSING: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"missing|no sim|not detected|not inserted|absent|not found|not recogni[sz]ed|insert sim|not present",
        )
        .unwrap()
    });
    static LOCKED: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"locked|\bpin\b|\bpuk\b|pin required|puk required").unwrap());
    static ACTIVE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b(active|ready|ok|working|fine|normal|inserted|detected)\b").unwrap());
    if MISSING.is_match(text) {
        "missing"
    } else if LOCKED.is_match(text) && !text.contains("unlocked") {
        "locked"
    } else if ACTIVE.is_match(text) {
        "active"
    } else {
        UNCLEAR
    }
}

fn speed(text: &str) -> &'static str {
    static NO_CONNECTION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"no (connection|internet|data|network|service|signal)|not connected|fail|unable|can'?t connect|cannot connect|could not|couldn'?t|offline|timed? ?out|no result|unavailable").unwrap()
    });
    static SPEED_VALUE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\d+(?:\.\d+)?) ?[mk]bps").unwrap());
    let zero_speed =
        SPEED_VALUE.captures(text).and_then(|c| c[1].parse::<f64>().ok()).is_some_and(|value| value == 0.0);
    if NO_CONNECTION.is_match(text) || zero_speed {
        return "no_connection";
    }
    static NOT_EXCELLENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"not (excellent|great|fast)").unwrap());
    if text.contains("excellent") && !NOT_EXCELLENT.is_match(text) {
        return "excellent";
    }
    static SLOW: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"very poor|poor|fair|good|slow|okay|\bok\b|average|moderate|mbps|kbps|\d+(\.\d+)? ?m").unwrap()
    });
    if SLOW.is_match(text) { "slow" } else { UNCLEAR }
}

fn network_mode(text: &str) -> &'static str {
    let modern = text.contains("5g") || text.contains("4g") || text.contains("lte");
    let old = text.contains("2g") || text.contains("3g") || text.contains("gsm") || text.contains("wcdma");
    if old && !modern {
        "old"
    } else if modern {
        "modern"
    } else {
        UNCLEAR
    }
}

fn yes_no(text: &str) -> &'static str {
    static NO: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(no|not|can'?t|cannot|unable|fail(s|ed|ing)?|error|doesn'?t|does not|didn'?t|did not|won'?t|false|stuck|nope)\b").unwrap()
    });
    static YES: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(yes|yep|sent|works|working|worked|can send|success(ful(ly)?)?|went through|true|delivered)\b")
            .unwrap()
    });
    if NO.is_match(text) {
        "no"
    } else if YES.is_match(text) {
        "yes"
    } else {
        UNCLEAR
    }
}

fn messaging_permissions(text: &str) -> &'static str {
    let mut states = Vec::new();
    for permission in ["sms", "storage"] {
        let state = switch_state(text, &[permission]);
        let mentioned = text.contains(permission);
        states.push((mentioned, state));
    }
    let any_named = states.iter().any(|(mentioned, _)| *mentioned);
    let looks_like_a_list = text.contains("permission") || text.contains("allowed") || text.contains("granted");
    let missing = states.iter().any(|(mentioned, state)| match (mentioned, state) {
        (true, Some(false)) => true,
        (false, _) => looks_like_a_list || any_named,
        _ => false,
    });
    if missing {
        "missing"
    } else if any_named {
        "ok"
    } else {
        UNCLEAR
    }
}

fn apn(text: &str) -> &'static str {
    // "MMSC URL (for picture messages): Not Set": read the value on the MMSC line.
    if let Some(line) = text.lines().find(|line| line.contains("mmsc")) {
        let value = line.rsplit([':', '=']).next().unwrap_or(line);
        let value = if line.contains("://") { line } else { value };
        if value.contains("http") || value.contains("://") {
            return "ok";
        }
        static EMPTY: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"missing|empty|none|not set|blank|no url|n/a|null|nothing|not configured").unwrap()
        });
        if EMPTY.is_match(value) || value.trim().is_empty() {
            return "mmsc_missing";
        }
    }
    static MMSC_MISSING: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"mmsc[^|,;\n]{0,20}(missing|empty|none|not set|blank|no url|isn'?t|is not|n/a|null|nothing)|no mmsc|(missing|empty|no) mms").unwrap()
    });
    if MMSC_MISSING.is_match(text) {
        "mmsc_missing"
    } else if text.contains("mmsc") && (text.contains("http") || text.contains("://")) {
        "ok"
    } else if text.contains("apn") && !text.contains("mmsc") {
        "mmsc_missing"
    } else {
        UNCLEAR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(tool: &str, field: Option<&str>, answer: &str, expected: &str) {
        assert_eq!(read(tool, field, answer), expected, "{tool} {field:?}: {answer}");
    }

    #[test]
    fn status_bar() {
        check("check_status_bar", None, "Status bar: airplane mode, no signal", "airplane");
        check("check_status_bar", None, "✈️ Airplane Mode | No Signal | Battery 80%", "airplane");
        check("check_status_bar", None, "No signal, battery 80%", "no_signal");
        check("check_status_bar", None, "airplane mode off, no service", "no_signal");
        check("check_status_bar", None, "4 bars, LTE", "ok");
        check("check_status_bar", None, "📶 Excellent | 5G | Battery 80%", "ok");
        check("check_status_bar", None, "I don't know", UNCLEAR);
        check("check_status_bar", None, "Status Bar: 📶⁴ Excellent | 5G | 📵 Data Disabled | 🔋 80%", "data_off");
        check("check_status_bar", None, "Status Bar: 📶⁴ Excellent | 5G | 📱 Data Enabled | 🔋 80%", "ok");
    }

    #[test]
    fn network_status_fields() {
        let text = "Airplane mode: off. Mobile data: on. Data roaming: off. Signal: good";
        check("check_network_status", Some("airplane_mode"), text, "off");
        check("check_network_status", Some("mobile_data"), text, "on");
        check("check_network_status", Some("data_roaming"), text, "off");
        check("check_network_status", None, "Airplane mode: on", "on");
        check("check_network_status", Some("data_roaming"), "roaming is enabled", "on");
        check("check_network_status", Some("mobile_data"), "mobile data is turned off", "off");
        check("check_network_status", Some("mobile_data"), "data_enabled = False", "off");
        let tau2 = "Airplane Mode: OFF\nSIM Card Status: active\nMobile Data Enabled: No\nData Roaming Enabled: No";
        check("check_network_status", Some("mobile_data"), tau2, "off");
        check("check_network_status", Some("data_roaming"), tau2, "off");
        check("check_network_status", Some("airplane_mode"), tau2, "off");
        check("check_network_status", Some("data_roaming"), "Data Roaming Enabled: Yes", "on");
    }

    #[test]
    fn sim_and_speed() {
        check("check_sim_status", None, "SIM status: missing", "missing");
        check("check_sim_status", None, "No SIM card detected", "missing");
        check("check_sim_status", None, "SIM is locked, asks for PIN", "locked");
        check("check_sim_status", None, "sim card status: active", "active");
        check("run_speed_test", None, "Speed test: no connection", "no_connection");
        check("run_speed_test", None, "Speed test: excellent", "excellent");
        check("run_speed_test", None, "Download speed: Poor (1.2 Mbps)", "slow");
        check("run_speed_test", None, "it's good but not excellent", "slow");
        check("run_speed_test", None, "Speed test: very poor", "slow");
        check("run_speed_test", None, "It says Excellent, about 280 Mbps.", "excellent");
        check(
            "run_speed_test",
            None,
            "Speed Test Result: 275.00 Mbps (Excellent). Connection is very fast.",
            "excellent",
        );
        check("run_speed_test", None, "0 Mbps", "no_connection");
    }

    #[test]
    fn settings() {
        check("check_data_restriction_status", None, "Data Saver mode: ON", "on");
        check("check_data_restriction_status", None, "data saver is off", "off");
        check("check_network_mode_preference", None, "Network mode: 2G only", "old");
        check("check_network_mode_preference", None, "3g_only", "old");
        check("check_network_mode_preference", None, "4g_5g_preferred", "modern");
        check("check_vpn_status", None, "VPN: connected", "on");
        check("check_vpn_status", None, "No VPN is connected", "off");
        check("check_vpn_status", None, "vpn disconnected", "off");
        check("check_wifi_calling_status", None, "Wi-Fi Calling: ON", "on");
        check("check_wifi_calling_status", None, "wifi calling is off", "off");
    }

    #[test]
    fn mms_permissions_and_apn() {
        check("can_send_mms", None, "No, the picture message failed to send", "no");
        check("can_send_mms", None, "Yes, it went through", "yes");
        check("can_send_mms", None, "MMS: cannot send", "no");
        check("check_app_permissions", None, "Messaging permissions: sms: on, storage: off, phone: on", "missing");
        check("check_app_permissions", None, "Allowed: SMS, phone", "missing");
        check("check_app_permissions", None, "Permissions: sms true, storage true", "ok");
        check("check_apn_settings", None, "APN: internet, MMSC URL: missing", "mmsc_missing");
        check("check_apn_settings", None, "APN internet; MMSC URL http://mms.carrier.com/mms/wapenc", "ok");
        check(
            "check_apn_settings",
            None,
            "Current APN Name: internet\nMMSC URL (for picture messages): Not Set\n(These are technical settings.)",
            "mmsc_missing",
        );
        check(
            "check_app_permissions",
            None,
            "The messaging app is allowed: SMS and phone, storage is not allowed.",
            "missing",
        );
        check("check_app_permissions", None, "App 'messaging' has permission for: sms, storage, phone.", "ok");
    }

    #[test]
    fn device_actions_are_done() {
        check("toggle_airplane_mode", None, "Done", "done");
        check("reboot_device", None, "ok it restarted", "done");
    }
}
