"""The simulated phone of the blind3 scenarios (imported by generate.py).

One model, three ways of reporting it (`tau2` tool output, `plain` customer's words, `screen` a settings
screen read out). Settings: airplane, sim (active/missing/locked_pin/locked_puk), apn (ok/broken) with
apn_name, mmsc (set/missing) with mmsc_url, apn_reset_pending, data, roaming, abroad, saver, mode
(4g_5g_preferred/3g_only/2g_only) with tech, vpn, wifi, wifi_calling, sms_perm, storage_perm
(granted/missing), registered (no until a reboot after the line is resumed), and three faults no
action reaches (outage: no service; data_fault: no data; slow_fault: slow data).
"""

MMSC = "http://mms.carrier.com/mms/wapenc"

DISPLAY = {
    "tau2": {
        ("data", "on"): "📱 Data Enabled", ("data", "off"): "📵 Data Disabled",
        ("saver", "on"): " | 🔽 Data Saver", ("saver", "off"): "",
        ("vpn", "on"): " | 🔒 VPN Connected", ("vpn", "off"): "",
    },
    "plain": {
        ("data", "on"): "the little data arrows are showing", ("data", "off"): "the data arrows are crossed out",
        ("saver", "on"): ", and there's a small data saver symbol", ("saver", "off"): "",
        ("vpn", "on"): ", and a little key icon", ("vpn", "off"): "",
    },
    "screen": {
        ("data", "on"): "Mobile data: ON", ("data", "off"): "Mobile data: OFF",
        ("saver", "on"): " · Data Saver: ON", ("saver", "off"): "",
        ("vpn", "on"): " · VPN: connected", ("vpn", "off"): "",
    },
}
ICON = {"data": "data_icon", "saver": "saver_icon", "vpn": "vpn_icon"}
TECH = {"4g_5g_preferred": "5G", "4g_only": "4G", "3g_only": "3G", "2g_only": "2G"}

DEFAULT = dict(
    airplane="off", sim="active", apn="ok", apn_name="internet", mmsc="set", mmsc_url=MMSC,
    apn_reset_pending="no", data="on", roaming="off", abroad="no", saver="off", mode="4g_5g_preferred",
    vpn="off", wifi="off", wifi_calling="off", sms_perm="granted", storage_perm="granted", registered="yes",
    outage="no", data_fault="no", slow_fault="no",
)


def initial_state(style, **overrides):
    state = dict(DEFAULT)
    for key, value in overrides.items():
        if key not in state:
            raise KeyError(key)
        state[key] = value
    if state["apn"] == "broken":
        state["apn_name"] = "broken"
    if state["mmsc"] == "missing":
        state["mmsc_url"] = "not set"
    state["tech"] = TECH[state["mode"]]
    for setting, icon in ICON.items():
        state[icon] = DISPLAY[style][(setting, state[setting])]
    return state


def cond(state=None, accounts=None):
    out = {}
    if accounts:
        out["accounts"] = dict(accounts)
    if state:
        out["state"] = dict(state)
    return out


def no_service(line):
    """Conditions under which the phone has no cellular service, most visible first."""
    return [
        ("airplane", cond({"airplane": "on"})),
        ("sim_missing", cond({"sim": "missing"})),
        ("sim_pin", cond({"sim": "locked_pin"})),
        ("sim_puk", cond({"sim": "locked_puk"})),
        ("apn", cond({"apn": "broken"})),
        ("suspended", cond(accounts={f"lines.{line}.status": "Suspended"})),
        ("unregistered", cond({"registered": "no"})),
        ("outage", cond({"outage": "yes"})),
    ]


def no_data(line, over_limit_plan):
    """Conditions under which mobile data has no connection (service is there)."""
    out = [
        ("data_off", cond({"data": "off"})),
        ("roaming_phone", cond({"abroad": "yes", "roaming": "off"})),
        ("roaming_line", cond({"abroad": "yes"}, {f"lines.{line}.roaming_enabled": False})),
    ]
    if over_limit_plan:
        out.append(("over_limit", cond(accounts={f"lines.{line}.plan_id": over_limit_plan,
                                                   f"lines.{line}.data_refueling_gb": 0})))
    out.append(("data_fault", cond({"data_fault": "yes"})))
    return out


def slow():
    return [
        ("very_poor", cond({"mode": "2g_only"})),
        ("poor", cond({"saver": "on"})),
        ("poor", cond({"vpn": "on"})),
        ("fair", cond({"mode": "3g_only"})),
        ("fair", cond({"slow_fault": "yes"})),
    ]


def mms_blockers():
    return [
        cond({"mode": "2g_only"}),
        cond({"wifi_calling": "on"}),
        cond({"sms_perm": "missing"}),
        cond({"storage_perm": "missing"}),
        cond({"mmsc": "missing"}),
    ]


def rule(when, say):
    out = {}
    if when:
        out["when"] = when
    out["say"] = say
    return out


TEXT = {
    "tau2": {
        "bar_airplane": "Status Bar: ✈️ Airplane Mode | 🔋 80%",
        "bar_none": "Status Bar: 📵 No Signal | 🔋 80%",
        "bar_ok": "Status Bar: 📶⁴ Excellent | {tech} | {data_icon}{saver_icon}{vpn_icon} | 🔋 80%",
        "net_none": ("Airplane Mode: {airplane}; SIM Card Status: {sim}; Cellular Connection: no service; "
                     "Cellular Signal: none; Cellular Network Type: none; Mobile Data Enabled: {data}; "
                     "Data Roaming Enabled: {roaming}; Wi-Fi Radio: {wifi}"),
        "net_ok": ("Airplane Mode: {airplane}; SIM Card Status: {sim}; Cellular Connection: connected; "
                   "Cellular Signal: excellent; Cellular Network Type: {tech}; Mobile Data Enabled: {data}; "
                   "Data Roaming Enabled: {roaming}; Wi-Fi Radio: {wifi}"),
        "sim": {"active": "SIM Card Status: active. Your SIM card is working.",
                "missing": "SIM Card Status: missing. No SIM card detected in the phone.",
                "locked_pin": "SIM Card Status: locked (PIN). Enter the SIM PIN to unlock.",
                "locked_puk": "SIM Card Status: locked (PUK). The SIM is blocked; a PUK code is required."},
        "apn": "Current APN Settings: APN Name: {apn_name}; MMSC URL: {mmsc_url}",
        "speed_none": "Speed test failed: No Connection.",
        "speed": {"very_poor": "Download Speed: 0.3 Mbps. Performance: Very Poor. Suitable for: text only.",
                  "poor": "Download Speed: 1.8 Mbps. Performance: Poor. Suitable for: basic browsing.",
                  "fair": "Download Speed: 7.5 Mbps. Performance: Fair. Suitable for: web browsing, SD video.",
                  "excellent": "Download Speed: 240.0 Mbps. Performance: Excellent. Suitable for: 4K streaming."},
        "restrict": "Data Saver mode: {saver}. Background data restriction: off.",
        "mode": "Network Mode Preference: {mode}",
        "vpn_on": "VPN is ON and connected. Server: vpn.privacyshield.example; Performance: Poor.",
        "vpn_off": "VPN is OFF. No VPN connection is active.",
        "wifi": "Wi-Fi Radio: {wifi}; Connected Network: none",
        "wifi_calling": "Wi-Fi Calling: {wifi_calling}",
        "apps": "Installed apps: messaging, browser, camera, settings, maps",
        "app_status": ("App 'messaging': permissions: sms: {sms_perm}, storage: {storage_perm}, phone: granted; "
                       "background data: allowed"),
        "perms": "Permissions for 'messaging': sms: {sms_perm}, storage: {storage_perm}, phone: granted",
        "mms_no": "Your messaging app cannot send MMS messages.",
        "mms_yes": "Your messaging app can send MMS messages.",
    },
    "plain": {
        "bar_airplane": "There's a little airplane symbol at the top and no signal bars.",
        "bar_none": "No bars at all, it just says No Service up there.",
        "bar_ok": "Full signal bars and it says {tech}, {data_icon}{saver_icon}{vpn_icon}.",
        "net_none": ("It says airplane mode is {airplane}, mobile data is {data}, data roaming is {roaming}, "
                     "and under mobile network it says not connected, no signal."),
        "net_ok": ("It says airplane mode is {airplane}, mobile network connected with excellent signal on "
                   "{tech}, mobile data is {data}, data roaming is {roaming}, Wi-Fi is {wifi}."),
        "sim": {"active": "The SIM page says the SIM card is active.",
                "missing": "It says there's no SIM card, 'insert SIM'.",
                "locked_pin": "It's asking me for a SIM PIN, says the SIM is locked.",
                "locked_puk": "It says the SIM is locked and wants a PUK code. I don't have any PUK code."},
        "apn": "The access point is called '{apn_name}' and the MMSC box says {mmsc_url}.",
        "speed_none": "The speed test just spins and then says no connection.",
        "speed": {"very_poor": "It says 0.3 megabits, very poor.",
                  "poor": "It came out at about 2 Mbps, it says poor.",
                  "fair": "About 7 Mbps, it says fair.",
                  "excellent": "240 Mbps, it says excellent!"},
        "restrict": "Data Saver is {saver}, and nothing else is restricted.",
        "mode": "Preferred network type says {mode}.",
        "vpn_on": "Yes, there's a VPN on, it says connected, performance poor. My nephew put it on.",
        "vpn_off": "No VPN, nothing connected.",
        "wifi": "Wi-Fi is {wifi}, not connected to anything.",
        "wifi_calling": "Wi-Fi Calling is {wifi_calling}.",
        "apps": "Messages, the browser, the camera, settings and maps.",
        "app_status": "The messaging app: SMS {sms_perm}, storage {storage_perm}, phone granted.",
        "perms": "For the messaging app: SMS is {sms_perm}, storage is {storage_perm}, phone is granted.",
        "mms_no": "No, the picture message fails, it says 'not sent'.",
        "mms_yes": "Yes! The picture went through this time.",
    },
    "screen": {
        "bar_airplane": "Top of the screen: ✈ airplane icon, no signal, battery 80%.",
        "bar_none": "Top of the screen: 'No service', no bars, battery 80%.",
        "bar_ok": "Top of the screen: 4 bars · {tech} · {data_icon}{saver_icon}{vpn_icon} · battery 80%.",
        "net_none": ("Settings > Network & internet: Airplane mode {airplane} · SIM {sim} · Mobile network: "
                     "Not connected · Mobile data {data} · Roaming {roaming} · Wi-Fi {wifi}"),
        "net_ok": ("Settings > Network & internet: Airplane mode {airplane} · SIM {sim} · Mobile network: "
                   "Connected ({tech}, signal excellent) · Mobile data {data} · Roaming {roaming} · Wi-Fi {wifi}"),
        "sim": {"active": "Settings > SIM: Status Active",
                "missing": "Settings > SIM: No SIM card",
                "locked_pin": "Settings > SIM: Locked - enter PIN",
                "locked_puk": "Settings > SIM: PUK locked - enter PUK code"},
        "apn": "Settings > Access Point Names: Name {apn_name} · MMSC {mmsc_url}",
        "speed_none": "Speed Test result: No connection",
        "speed": {"very_poor": "Speed Test result: 0.3 Mbps down · Very poor",
                  "poor": "Speed Test result: 1.8 Mbps down · Poor",
                  "fair": "Speed Test result: 7.5 Mbps down · Fair",
                  "excellent": "Speed Test result: 240 Mbps down · Excellent"},
        "restrict": "Settings > Data usage: Data Saver {saver} · Background data unrestricted",
        "mode": "Settings > Mobile network > Preferred network type: {mode}",
        "vpn_on": "Settings > VPN: PrivacyShield · Connected · performance Poor",
        "vpn_off": "Settings > VPN: none connected",
        "wifi": "Settings > Wi-Fi: {wifi} · not connected",
        "wifi_calling": "Settings > Calls > Wi-Fi Calling: {wifi_calling}",
        "apps": "Apps: Messaging, Browser, Camera, Settings, Maps",
        "app_status": "Apps > Messaging > Permissions: SMS {sms_perm} · Storage {storage_perm} · Phone granted",
        "perms": "Apps > Messaging > Permissions: SMS {sms_perm} · Storage {storage_perm} · Phone granted",
        "mms_no": "Messaging: 'Message not sent. Tap to retry.'",
        "mms_yes": "Messaging: picture message sent ✓",
    },
}


def checks(style, line, over_limit_plan=None):
    t = TEXT[style]
    ns = no_service(line)
    nd = no_data(line, over_limit_plan)
    out = {}
    bar = []
    for reason, when in ns:
        bar.append(rule(when, t["bar_airplane"] if reason == "airplane" else t["bar_none"]))
    bar.append(rule(None, t["bar_ok"]))
    out["check_status_bar"] = bar
    net = [rule(when, t["net_none"]) for _, when in ns]
    net.append(rule(None, t["net_ok"]))
    out["check_network_status"] = net
    out["check_network_mode_preference"] = t["mode"]
    out["check_sim_status"] = [rule(cond({"sim": value}), text) for value, text in t["sim"].items()]
    out["check_data_restriction_status"] = t["restrict"]
    out["check_apn_settings"] = t["apn"]
    out["check_wifi_status"] = t["wifi"]
    out["check_wifi_calling_status"] = t["wifi_calling"]
    out["check_vpn_status"] = [rule(cond({"vpn": "on"}), t["vpn_on"]), rule(None, t["vpn_off"])]
    out["check_installed_apps"] = t["apps"]
    out["check_app_status"] = t["app_status"]
    out["check_app_permissions"] = t["perms"]
    speed = [rule(when, t["speed_none"]) for _, when in ns + nd]
    speed += [rule(when, t["speed"][level]) for level, when in slow()]
    speed.append(rule(None, t["speed"]["excellent"]))
    out["run_speed_test"] = speed
    mms = [rule(when, t["mms_no"]) for _, when in ns + nd]
    mms += [rule(when, t["mms_no"]) for when in mms_blockers()]
    mms.append(rule(None, t["mms_yes"]))
    out["can_send_mms"] = mms
    return out


def toggle(field, style=None):
    icon = ICON.get(field) if style else None

    def setting(value):
        out = {field: value}
        if icon:
            out[icon] = DISPLAY[style][(field, value)]
        return out

    return [{"when": cond({field: "on"}), "set": setting("off")}, {"set": setting("on")}]


def actions(style, line):
    active = {f"lines.{line}.status": "Active"}
    apn_fixed = {"apn": "ok", "apn_name": "internet", "mmsc": "set", "mmsc_url": MMSC, "apn_reset_pending": "no"}
    return {
        "toggle_airplane_mode": toggle("airplane"),
        "toggle_data": toggle("data", style),
        "toggle_roaming": toggle("roaming"),
        "toggle_data_saver_mode": toggle("saver", style),
        "toggle_wifi": toggle("wifi"),
        "toggle_wifi_calling": toggle("wifi_calling"),
        "reseat_sim_card": [{"when": cond({"sim": "missing"}), "set": {"sim": "active"}}],
        "set_network_mode_preference": {"mode": "4g_5g_preferred", "tech": "5G"},
        "set_apn_settings": None,
        "reset_apn_settings": {"apn_reset_pending": "yes"},
        "connect_vpn": {"vpn": "on", "vpn_icon": DISPLAY[style][("vpn", "on")]},
        "disconnect_vpn": {"vpn": "off", "vpn_icon": DISPLAY[style][("vpn", "off")]},
        "grant_app_permission": [
            {"when": cond({"sms_perm": "missing"}), "set": {"sms_perm": "granted"}},
            {"when": cond({"storage_perm": "missing"}), "set": {"storage_perm": "granted"}},
        ],
        "reboot_device": [
            {"when": cond({"apn_reset_pending": "yes"}, active), "set": dict(apn_fixed, registered="yes")},
            {"when": cond({"apn_reset_pending": "yes"}), "set": dict(apn_fixed)},
            {"when": cond(accounts=active), "set": {"registered": "yes"}},
        ],
    }


def device(style, line, over_limit_plan=None, **overrides):
    return {
        "state": initial_state(style, **overrides),
        "checks": checks(style, line, over_limit_plan),
        "actions": actions(style, line),
    }
