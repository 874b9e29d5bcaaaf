"""Writes the blind3 scenario files and account files (run: python3 generate.py in this folder).

The YAML files are the deliverable and stand alone; this script only keeps the 40 phones consistent.
"""

import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import accounts_gen  # noqa: E402
import phone_gen  # noqa: E402

TAU2 = "../../../data/tau2-telecom/db.toml"
TRANSFER = "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON."
ACCOUNT_CHANGES = ["send_payment_request", "make_payment", "refuel_data", "change_plan", "resume_line",
                   "suspend_line", "disable_roaming"]

SCENARIOS = []


def scenario(file, comment, name, accounts, line, style, opening, customer, state=None, over_limit=None,
             decisions=None, expect=None, max_turns=40):
    SCENARIOS.append(dict(file=file, comment=comment, name=name, accounts=accounts, line=line, style=style,
                          opening=opening, customer=customer, state=state or {}, over_limit=over_limit,
                          decisions=decisions or {"confirmation": "yes"}, expect=expect or {},
                          max_turns=max_turns))


def resolved(forbidden_extra=(), device_actions=(), device_state=None, final_state=None, actions=(),
             mentions=(), forbid_account_changes=True):
    forbidden = list(ACCOUNT_CHANGES) if forbid_account_changes else []
    forbidden += ["transfer_to_human_agents"]
    forbidden += list(forbidden_extra)
    out = {}
    if actions:
        out["actions"] = list(actions)
    out["forbidden_actions"] = forbidden
    if final_state:
        out["final_state"] = final_state
    if mentions:
        out["reply_mentions"] = list(mentions)
    out["handoff"] = False
    if device_state:
        out["device_state"] = device_state
    if device_actions:
        out["device_actions"] = list(device_actions)
    return out


def transferred(forbidden_extra=(), device_actions=(), device_state=None, final_state=None):
    out = {
        "actions": ["transfer_to_human_agents"],
        "forbidden_actions": list(ACCOUNT_CHANGES) + list(forbidden_extra),
        "reply_mentions": [TRANSFER],
        "handoff": True,
    }
    if final_state:
        out["final_state"] = final_state
    if device_state:
        out["device_state"] = device_state
    if device_actions:
        out["device_actions"] = list(device_actions)
    return out


def paid_and_resumed(customer_id, bill_id, line, extra_actions=(), extra_final=None, device_state=None,
                     device_actions=(), forbidden_extra=(), mentions=()):
    final = {f"bills.{bill_id}.status": "Paid", f"lines.{line}.status": "Active"}
    final.update(extra_final or {})
    ds = {"registered": "yes"}
    ds.update(device_state or {})
    return {
        "actions": [{"name": "send_payment_request", "args": {"customer_id": customer_id, "bill_id": bill_id}},
                    {"name": "resume_line", "args": {"line_id": line}}] + list(extra_actions),
        "forbidden_actions": ["refuel_data", "change_plan", "suspend_line", "disable_roaming",
                              "transfer_to_human_agents"] + list(forbidden_extra),
        "final_state": final,
        "reply_mentions": ["reboot"] + list(mentions),
        "handoff": False,
        "device_state": ds,
        "device_actions": ["reboot_device"] + [a for a in device_actions if a != "reboot_device"],
    }


# =====================================================================================================
# Path 1: no service
# =====================================================================================================

scenario(
    "s01_airplane_angry_line_number.yaml",
    """No service because airplane mode is on (workflow Path 1, Step 1.1). Angry customer, identified
by the line's own number (Jamal Carter, L3571). Account in order: nothing to change on it.""",
    "blind3 s01 no service, airplane mode on, angry, line number",
    "accounts-healthy.toml", "L3571", "tau2",
    "This is ridiculous. My phone has had NO service all morning and I pay you people every single month. "
    "Fix it.",
    {"phone_number": "555-870-7001", "full_name": "Jamal Carter", "date_of_birth": "1990-07-30",
     "line": "555-870-7001", "location": "I'm at home in Baltimore. Where else would I be?"},
    state={"airplane": "on"},
    expect=resolved(device_actions=["toggle_airplane_mode"], device_state={"airplane": "off"}),
)

scenario(
    "s02_sim_missing_elderly_name_dob.yaml",
    """No service because the SIM card is not seated (Path 1, Step 1.2: SIM missing -> reseat).
Elderly, unsure customer who does not know his mobile number: identified by full name + date of
birth (written in words). Arthur Pendleton, one line L3561, roaming not enabled and he is at home,
so enabling roaming would be a wrong account change.""",
    "blind3 s02 no service, SIM missing, elderly, name and date of birth",
    "accounts-healthy.toml", "L3561", "plain",
    "Hello? Is this the telephone company? My mobile telephone says something about no service and I "
    "can't ring my daughter. I dropped it on the kitchen floor yesterday and the back came off. I'm not "
    "very good with these things.",
    {"phone_number": None, "customer_id": None, "full_name": "Arthur Pendleton",
     "date_of_birth": "January the 22nd, 1939", "line": None,
     "location": "At home. I don't go anywhere these days."},
    state={"sim": "missing"},
    expect=resolved(forbidden_extra=["enable_roaming"], device_actions=["reseat_sim_card"],
                    device_state={"sim": "active"}),
)

scenario(
    "s03_apn_broken_non_native_customer_id.yaml",
    """No service with airplane mode off and an active SIM: the APN settings are broken (Path 1,
Step 1.3: reset APN settings, then restart; the manual: the reset applies only after a reboot).
Non-native speaker who gives her customer id (C3505) and a day-first date of birth.""",
    "blind3 s03 no service, broken APN, non-native, customer id",
    "accounts-healthy.toml", "L3551", "screen",
    "Hello. My customer number is C3505. Since yesterday my phone have no network, it write 'No service'. "
    "Please help me.",
    {"customer_id": "C3505", "phone_number": "555-850-5001", "full_name": "Nadia Petrova",
     "date_of_birth": "19.08.1984", "line": "555-850-5001", "location": "I am in home, in Brooklyn. Not travel."},
    state={"apn": "broken"},
    expect=resolved(device_actions=["reset_apn_settings", "reboot_device"],
                    device_state={"apn": "ok", "apn_reset_pending": "no"}),
)

scenario(
    "s04_sim_puk_locked_terse_transfer.yaml",
    """No service because the SIM is locked with a PUK code (Path 1, Step 1.2: locked with PIN/PUK ->
escalate to technical support; the manual says the same). Terse customer, line number. The agent
transfers: transfer_to_human_agents, then the exact sentence from the policy.""",
    "blind3 s04 no service, SIM PUK-locked, terse, transfer",
    "accounts-healthy.toml", "L3541", "tau2",
    "Phone says no service.",
    {"phone_number": "555-840-4001", "full_name": "Sam Okoro", "date_of_birth": "2000-04-04",
     "line": "555-840-4001", "location": "Home."},
    state={"sim": "locked_puk"},
    expect=transferred(),
)

scenario(
    "s05_suspended_overdue_chatty_line_number.yaml",
    """No service because the line is suspended for an overdue bill (Path 1, Step 1.4 -> policy Line
Suspension and Overdue Bill Payment). Phone settings are all fine. The agent checks the bill is
overdue, sends the payment request, takes the payment, resumes the line and tells her to reboot;
service only comes back after that reboot. Chatty customer, line number.""",
    "blind3 s05 no service, line suspended for overdue bill, chatty",
    "accounts-overdue-suspended.toml", "L3151", "plain",
    "Hi!! Okay so my phone just stopped working like completely, no bars at all, and I have a huge "
    "presentation tomorrow and honestly I need my phone for literally everything. I just moved apartments "
    "so everything is chaos. Can you see what's going on?",
    {"phone_number": "555-450-1001", "full_name": "Kim Nguyen", "date_of_birth": "1999-01-30",
     "line": "555-450-1001", "location": "I'm home in San Jose, not travelling, just moved across town!",
     "payment_method": "My debit card, the one ending in 2525."},
    state={"registered": "no"},
    expect=paid_and_resumed("C3105", "B3151", "L3151", forbidden_extra=["enable_roaming"]),
)

scenario(
    "s06_airplane_and_suspended_terse_contact_number.yaml",
    """Two causes of no service: airplane mode on, and line L3121 suspended for overdue bill B3121
(Path 1, Steps 1.1 then 1.4). Terse customer who gives his contact number (555-420-8000, not a
line) and has three lines: the agent must ask which line. Only L3121 is resumed.""",
    "blind3 s06 no service, airplane mode and suspended line, contact number, three lines",
    "accounts-overdue-suspended.toml", "L3121", "screen",
    "No signal on one of my lines since last week.",
    {"phone_number": "555-420-8000", "full_name": "Rajesh Subramanian", "date_of_birth": "1987-09-03",
     "line": "555-420-8001", "location": "Home. Edison, NJ.", "payment_method": "Credit card 8842."},
    state={"airplane": "on", "registered": "no"},
    expect=paid_and_resumed("C3102", "B3121", "L3121", device_actions=["toggle_airplane_mode"],
                            device_state={"airplane": "off"},
                            extra_final={"lines.L3122.status": "Active", "lines.L3123.status": "Active"},
                            forbidden_extra=["enable_roaming"]),
    max_turns=50,
)

scenario(
    "s07_sim_missing_and_suspended_elderly_name_dob.yaml",
    """Two causes of no service: the SIM is not seated, and line L3101 is suspended for overdue bill
B3101 (Path 1, Steps 1.2 and 1.4). Elderly customer who does not know her mobile number: full name
+ date of birth in words. Pay, resume, reboot.""",
    "blind3 s07 no service, SIM missing and suspended line, elderly, name and date of birth",
    "accounts-overdue-suspended.toml", "L3101", "plain",
    "Good afternoon, dear. My grandson says my cell phone has no service. I don't understand it, it was "
    "fine last week. Can you help an old lady?",
    {"phone_number": None, "customer_id": None, "full_name": "Dolores Whitaker",
     "date_of_birth": "July 4th, 1941. Independence Day!", "line": None,
     "location": "At home in Dayton, dear.", "payment_method": "My debit card, the one ending in 4417."},
    state={"sim": "missing", "registered": "no"},
    expect=paid_and_resumed("C3101", "B3101", "L3101", device_actions=["reseat_sim_card"],
                            device_state={"sim": "active"}, forbidden_extra=["enable_roaming"]),
    max_turns=50,
)

scenario(
    "s08_contract_ended_elderly_transfer.yaml",
    """No service because line L3401 is suspended and its contract ended on 2025-01-31; no bill is
overdue. Policy: the agent may not lift a suspension when the contract end date is in the past;
Path 1, Step 1.4: cannot lift -> escalate. Elderly, confused customer, line number.""",
    "blind3 s08 no service, contract ended, elderly, transfer",
    "accounts-contract-ended.toml", "L3401", "plain",
    "My phone doesn't get any signal anymore. I've had the same phone for years, I don't know what "
    "happened. It's been like this since the start of the month, I think. Or was it January.",
    {"phone_number": "555-710-1001", "full_name": "Walter Brooks", "date_of_birth": "September 9, 1949",
     "line": "555-710-1001", "location": "I'm at home."},
    state={"registered": "no"},
    expect=transferred(final_state={"lines.L3401.status": "Suspended"}),
)

scenario(
    "s09_airplane_and_contract_ended_non_native_customer_id.yaml",
    """No service: airplane mode is on AND line L3431 is suspended because its contract ended on
2025-02-14. The workflow checks airplane mode first (Step 1.1), so the customer is asked to turn it
off; the suspension cannot be lifted (policy), so the agent then transfers. Non-native speaker
with a customer id.""",
    "blind3 s09 no service, airplane mode and contract ended, non-native, customer id, transfer",
    "accounts-contract-ended.toml", "L3431", "tau2",
    "Good day. My customer ID is C3403. My phone has no service, I don't understand why. Please to check.",
    {"customer_id": "C3403", "phone_number": "555-730-3001", "full_name": "Oleksandr Kovalenko",
     "date_of_birth": "1 December 1991", "line": "555-730-3001", "location": "I am at home in Brooklyn."},
    state={"airplane": "on", "registered": "no"},
    expect=transferred(device_actions=["toggle_airplane_mode"], device_state={"airplane": "off"},
                       final_state={"lines.L3431.status": "Suspended"}),
)

scenario(
    "s10_airplane_apn_suspended_angry_line_number.yaml",
    """Three causes of no service: airplane mode on, broken APN settings, and line L3131 suspended for
overdue bill B3131 (Path 1, Steps 1.1, 1.3, 1.4). Angry customer; his contact number is the line's
number. He has two payment methods and says which to use. The APN reset needs a reboot, and the
resumed line needs another (or the same, if done after resuming) reboot.""",
    "blind3 s10 no service, airplane mode, broken APN and suspended line, angry",
    "accounts-overdue-suspended.toml", "L3131", "screen",
    "I've been without service for a week and I've had it. Nobody at the store could fix it. Sort it out.",
    {"phone_number": "555-430-9001", "full_name": "Kwame Mensah", "date_of_birth": "1979-12-19",
     "line": "555-430-9001", "location": "At home in Columbus. I'm not travelling.",
     "payment_method": "The credit card ending 1200. Not PayPal."},
    state={"airplane": "on", "apn": "broken", "registered": "no"},
    expect=paid_and_resumed("C3103", "B3131", "L3131",
                            device_actions=["toggle_airplane_mode", "reset_apn_settings"],
                            device_state={"airplane": "off", "apn": "ok"},
                            extra_final={"lines.L3132.status": "Active"},
                            forbidden_extra=["enable_roaming"]),
    max_turns=60,
)

scenario(
    "s11_sim_pin_locked_chatty_name_dob_transfer.yaml",
    """No service because the SIM is locked with a PIN after wrong attempts (Path 1, Step 1.2: locked
with PIN/PUK -> escalate). Chatty customer who does not know his own number: name + date of birth.""",
    "blind3 s11 no service, SIM PIN-locked, chatty, name and date of birth, transfer",
    "accounts-healthy.toml", "L3521", "screen",
    "Hey there! So I restarted my phone last night and now it's asking me for some code, I tried a couple "
    "of numbers, no luck, and now there's no service at all, lol. Help?",
    {"phone_number": None, "customer_id": None, "full_name": "Diego Alvarez",
     "date_of_birth": "June 6th 1997, Gemini represent", "line": None,
     "location": "Home in Phoenix, chilling."},
    state={"sim": "locked_pin"},
    expect=transferred(),
)

scenario(
    "s12_no_service_unresolved_terse_contact_number_transfer.yaml",
    """No service that nothing in the workflow fixes: airplane off, SIM active, APN reset + reboot does
not help, line L3531 active and the account in order (Path 1, Step 1.4: still not resolved ->
escalate). The workflow says to try every relevant step first, so the APN reset and reboot must
have been asked for. Terse customer, contact number, two lines.""",
    "blind3 s12 no service, nothing fixes it, contact number, transfer",
    "accounts-healthy.toml", "L3531", "tau2",
    "No service on my phone.",
    {"phone_number": "555-830-3000", "full_name": "Fatima Benali", "date_of_birth": "1989-10-15",
     "line": "555-830-3001", "location": "Home, Dearborn."},
    state={"outage": "yes"},
    expect=transferred(device_actions=["reset_apn_settings", "reboot_device"]),
)

# =====================================================================================================
# Path 2.1: no mobile data
# =====================================================================================================

scenario(
    "d01_data_off_terse_line_number.yaml",
    """Mobile data unavailable because the mobile data switch is off (Path 2.1, Step 2.1.3). Terse
customer, tau2's John Smith on L1001 (not roaming enabled, not travelling: enabling roaming would
be a wrong change; his other line L1003 is suspended and bill B1002 is Issued, neither is part of
this request).""",
    "blind3 d01 no data, mobile data off, terse, line number",
    TAU2, "L1001", "tau2",
    "Mobile data not working.",
    {"phone_number": "555-123-2001", "full_name": "John Smith", "date_of_birth": "1985-06-15",
     "line": "555-123-2001", "location": "Not travelling. Home."},
    state={"data": "off"},
    expect=resolved(forbidden_extra=["enable_roaming"], device_actions=["toggle_data"],
                    device_state={"data": "on"},
                    final_state={"lines.L1003.status": "Suspended", "bills.B1002.status": "Issued"}),
)

scenario(
    "d02_abroad_phone_roaming_off_chatty_customer_id.yaml",
    """Mobile data unavailable abroad because data roaming is off on the phone; the line (tau2 Sarah
Johnson's L1005) is already roaming enabled (Path 2.1, Step 2.1.2: data roaming OFF -> turn it
ON). Chatty customer giving her customer id C1002; she has five lines, so the agent must learn
which one.""",
    "blind3 d02 no data abroad, phone roaming off, chatty, customer id, five lines",
    TAU2, "L1005", "plain",
    "Hi, hello! I'm on a family trip in Rome, which is amazing by the way, the food, oh my god, but my "
    "phone has no internet. It shows bars but nothing loads. My customer ID is C1002 if that helps!",
    {"customer_id": "C1002", "phone_number": "555-123-2005", "full_name": "Sarah Johnson",
     "date_of_birth": "1990-11-22", "line": "It's 555-123-2005, that's my own phone.",
     "location": "I'm in Rome, Italy, on holiday for ten days!"},
    state={"abroad": "yes", "roaming": "off"},
    expect=resolved(device_actions=["toggle_roaming"], device_state={"roaming": "on"},
                    final_state={"lines.L1005.roaming_enabled": True}),
)

scenario(
    "d03_abroad_line_roaming_disabled_chatty_line_number.yaml",
    """Mobile data unavailable abroad: data roaming is already ON on the phone but line L3301 is not
roaming enabled (Step 2.1.2: Data Roaming ON but not working -> enable roaming on the line at no
cost, policy Data Roaming). Chatty customer, line number.""",
    "blind3 d03 no data abroad, line not roaming enabled, chatty, line number",
    "accounts-roaming-off.toml", "L3301", "tau2",
    "Hi! I just landed in Tokyo for a conference and my mobile data isn't working at all. I even turned "
    "on data roaming on my phone before the flight like my colleague told me to, but still nothing. Can "
    "you help? I need maps to get to my hotel!",
    {"phone_number": "555-610-6001", "full_name": "Priya Raman", "date_of_birth": "August 8, 1992",
     "line": "555-610-6001", "location": "Tokyo, Japan. I'm here for a week for a conference."},
    state={"abroad": "yes", "roaming": "on"},
    expect=resolved(actions=[{"name": "enable_roaming", "args": {"line_id": "L3301"}}],
                    final_state={"lines.L3301.roaming_enabled": True}, device_state={"roaming": "on"}),
)

scenario(
    "d04_abroad_phone_and_line_roaming_off_non_native_customer_id.yaml",
    """Mobile data unavailable abroad for two reasons: data roaming is off on the phone AND line L3341
is not roaming enabled (Step 2.1.2, both branches). Non-native speaker who identifies with his
customer id C3304 and does not know his number (one line on the account).""",
    "blind3 d04 no data abroad, phone and line roaming off, non-native, customer id",
    "accounts-roaming-off.toml", "L3341", "screen",
    "Hello, I am customer C3304. I am now in Istanbul for visit my family and the internet on my phone is "
    "not working. Calls are working.",
    {"customer_id": "C3304", "phone_number": None, "full_name": "Yusuf Demir", "date_of_birth": "17/01/1988",
     "line": None, "location": "I am in Istanbul, in Turkey."},
    state={"abroad": "yes", "roaming": "off"},
    expect=resolved(actions=[{"name": "enable_roaming", "args": {"line_id": "L3341"}}],
                    device_actions=["toggle_roaming"], device_state={"roaming": "on"},
                    final_state={"lines.L3341.roaming_enabled": True}),
)

scenario(
    "d05_over_limit_refuel_non_native_line_number.yaml",
    """Mobile data unavailable because line L3201 used 5.3 GB of its Basic plan's 5 GB (Step 2.1.4,
policy Data Refueling: ask how much, confirm the price, refuel at most 2 GB). He wants 2 GB: the
Basic plan's $5 per GB makes $10, which the agent must state before charging. Non-native speaker,
line number.""",
    "blind3 d05 no data, over the data limit, refuel 2 GB, non-native",
    "accounts-over-limit.toml", "L3201", "tau2",
    "Hello, my internet on the phone is stopped. Websites not open. Yesterday it was working good.",
    {"phone_number": "555-510-2001", "full_name": "Tomasz Wojcik", "date_of_birth": "14 February 1990",
     "line": "555-510-2001", "location": "I am at home in Chicago, no travel."},
    over_limit="P1001",
    decisions={"confirmation": "yes", "data_gb": "2 GB please"},
    expect={
        "actions": [{"name": "refuel_data", "args": {"customer_id": "C3201", "line_id": "L3201", "gb_amount": 2}}],
        "forbidden_actions": ["change_plan", "resume_line", "send_payment_request", "enable_roaming",
                              "transfer_to_human_agents"],
        "final_state": {"lines.L3201.data_refueling_gb": 2, "lines.L3201.plan_id": "P1001"},
        "reply_mentions": ["$10"],
        "handoff": False,
    },
)

scenario(
    "d06_over_limit_plan_change_chatty_contact_number.yaml",
    """Mobile data unavailable because line L3221 used 15.6 GB of its Premium plan's 15 GB. The
customer says up front she would rather move to a bigger plan than buy data (Step 2.1.4: ask
whether to change plan or refuel; policy Change Plan: know the line, list plans, she picks
Unlimited Plus, confirm its price, $85 a month). Contact number, three lines; L3223 is over its
limit too but is not the line she asks about and must not change.""",
    "blind3 d06 no data, over the data limit, plan change, chatty, contact number",
    "accounts-over-limit.toml", "L3221", "plain",
    "Hi there, Brenda here! So the internet on my phone quit on me this morning. I have three lines with "
    "you, it's mine that's acting up. Honestly if I've run out of data again I'd rather just move up to "
    "a bigger plan than keep buying top-ups, I'm sick of running out every month.",
    {"phone_number": "555-520-3000", "full_name": "Brenda Cole", "date_of_birth": "10/10/1968",
     "line": "555-520-3001, that's my cell", "location": "I'm home in Tulsa."},
    over_limit="P1002",
    decisions={"confirmation": "yes", "plan": "Unlimited Plus", "data_gb": None},
    expect={
        "actions": [{"name": "change_plan", "args": {"line_id": "L3221", "plan_id": "P1003"}}],
        "forbidden_actions": ["refuel_data", {"name": "change_plan", "args": {"line_id": "L3222"}},
                              {"name": "change_plan", "args": {"line_id": "L3223"}}, "resume_line",
                              "send_payment_request", "enable_roaming", "transfer_to_human_agents"],
        "final_state": {"lines.L3221.plan_id": "P1003", "lines.L3223.plan_id": "P1001",
                        "lines.L3222.plan_id": "P1001"},
        "reply_mentions": ["$85"],
        "handoff": False,
    },
)

scenario(
    "d07_data_off_and_over_limit_terse_customer_id.yaml",
    """Mobile data unavailable for two reasons: the data switch is off (Step 2.1.3) and line L3231 used
25.8 GB of its Family Share plan's 25 GB (Step 2.1.4). Refuel 2 GB at $3 per GB: $6, stated before
charging. Terse customer, customer id.""",
    "blind3 d07 no data, data off and over limit, terse, customer id",
    "accounts-over-limit.toml", "L3231", "screen",
    "Customer C3203. No mobile data.",
    {"customer_id": "C3203", "phone_number": "555-530-4001", "full_name": "Li Wei", "date_of_birth": "1985-03-08",
     "line": "555-530-4001", "location": "Home."},
    state={"data": "off"},
    over_limit="P1004",
    decisions={"confirmation": "yes", "data_gb": "2"},
    expect={
        "actions": [{"name": "refuel_data", "args": {"line_id": "L3231", "gb_amount": 2}}],
        "forbidden_actions": ["change_plan", "resume_line", "send_payment_request", "enable_roaming",
                              "transfer_to_human_agents"],
        "final_state": {"lines.L3231.data_refueling_gb": 2},
        "reply_mentions": ["$6"],
        "handoff": False,
        "device_state": {"data": "on"},
        "device_actions": ["toggle_data"],
    },
)

scenario(
    "d08_abroad_three_faults_angry_contact_number.yaml",
    """Mobile data unavailable abroad for three reasons: mobile data off, data roaming off on the phone,
and line L3321 not roaming enabled (Steps 2.1.2 and 2.1.3). Angry customer, contact number, two
lines: only L3321 gets roaming enabled (L3322 already is).""",
    "blind3 d08 no data abroad, data off, phone and line roaming off, angry, contact number",
    "accounts-roaming-off.toml", "L3321", "tau2",
    "I'm in Copenhagen for a funeral and the internet on my phone is dead. I do NOT have time for this. "
    "I have two lines with you, it's my own phone that's broken.",
    {"phone_number": "555-620-7000", "full_name": "Henrik Larsen", "date_of_birth": "April 2, 1975",
     "line": "555-620-7001. Mine.", "location": "Copenhagen, Denmark. I told you."},
    state={"abroad": "yes", "roaming": "off", "data": "off"},
    expect=resolved(actions=[{"name": "enable_roaming", "args": {"line_id": "L3321"}}],
                    device_actions=["toggle_data", "toggle_roaming"],
                    device_state={"data": "on", "roaming": "on"},
                    final_state={"lines.L3321.roaming_enabled": True, "lines.L3322.roaming_enabled": True}),
    max_turns=50,
)

scenario(
    "d09_airplane_and_data_off_elderly_name_dob.yaml",
    """Mobile data unavailable: airplane mode is on (so no service either) and the data switch is off.
Step 2.1.1: follow Path 1 first (airplane mode off), then Step 2.1.3 (mobile data on). Elderly
customer without her number: name + date of birth.""",
    "blind3 d09 no data, airplane mode and data off, elderly, name and date of birth",
    "accounts-healthy.toml", "L3501", "plain",
    "Hello dear, the internet on my mobile has stopped. I can't see the pictures of my grandchildren on "
    "the Facebook anymore. My grandson was playing with the settings, I think.",
    {"phone_number": None, "customer_id": None, "full_name": "Margaret O'Neill",
     "date_of_birth": "the 28th of February, 1946", "line": None, "location": "I'm at home in Boston, dear."},
    state={"airplane": "on", "data": "off"},
    expect=resolved(forbidden_extra=["enable_roaming"], device_actions=["toggle_airplane_mode", "toggle_data"],
                    device_state={"airplane": "off", "data": "on"}),
)

scenario(
    "d10_suspended_and_data_off_non_native_name_dob.yaml",
    """No data and no signal: line L3141 is suspended for overdue bill B3141, and the mobile data switch
is off. Path 1 first (suspension: pay, resume, reboot), then Step 2.1.3. Her Draft March bill B3142
is not overdue and must stay as it is. Non-native speaker, name + day-first date of birth.""",
    "blind3 d10 no data, suspended line and data off, non-native, name and date of birth",
    "accounts-overdue-suspended.toml", "L3141", "screen",
    "Hi, good afternoon. My phone don't have internet and also no signal since few days. My name is Ana "
    "Lucia Ferreira.",
    {"phone_number": None, "customer_id": None, "full_name": "Ana Lucia Ferreira", "date_of_birth": "27/05/1993",
     "line": None, "location": "I am at home in Newark.", "payment_method": "The credit card, final 7001."},
    state={"registered": "no", "data": "off"},
    expect=paid_and_resumed("C3104", "B3141", "L3141", device_actions=["toggle_data"],
                            device_state={"data": "on"}, extra_final={"bills.B3142.status": "Draft"},
                            forbidden_extra=["enable_roaming",
                                             {"name": "send_payment_request", "args": {"bill_id": "B3142"}}]),
    max_turns=50,
)

scenario(
    "d11_abroad_line_roaming_and_over_limit_chatty_name_dob.yaml",
    """No data abroad for two account reasons: line L3331 is not roaming enabled (Step 2.1.2, phone
roaming already on) and it used 5.2 GB of its Basic plan's 5 GB (Step 2.1.4). Enable roaming for
free, then refuel 2 GB at $5 per GB ($10, stated first). Chatty customer, name + date of birth.""",
    "blind3 d11 no data abroad, line roaming off and over limit, chatty, name and date of birth",
    "accounts-roaming-off.toml", "L3331", "screen",
    "Hola! I mean, hello! I'm visiting my sister in Lisbon and the internet on my phone won't work at all. "
    "The data roaming switch is on, I checked it twice! I'm Gloria Mendes, by the way.",
    {"phone_number": None, "customer_id": None, "full_name": "Gloria Mendes",
     "date_of_birth": "November 30, 1950", "line": None,
     "location": "Lisbon, Portugal! Two weeks with my sister."},
    state={"abroad": "yes", "roaming": "on"},
    over_limit="P1001",
    decisions={"confirmation": "yes", "data_gb": "2 gigabytes", "plan": None},
    expect={
        "actions": [{"name": "enable_roaming", "args": {"line_id": "L3331"}},
                    {"name": "refuel_data", "args": {"line_id": "L3331", "gb_amount": 2}}],
        "forbidden_actions": ["change_plan", "resume_line", "send_payment_request", "transfer_to_human_agents"],
        "final_state": {"lines.L3331.roaming_enabled": True, "lines.L3331.data_refueling_gb": 2},
        "reply_mentions": ["$10"],
        "handoff": False,
    },
    max_turns=50,
)

scenario(
    "d12_contract_ended_chatty_contact_number_transfer.yaml",
    """Reported as a mobile data problem, but the phone has no service at all: line L3421 is suspended
because its contract ended on 2024-12-31 (Step 2.1.1 -> Path 1 -> Step 1.4; the policy forbids
lifting it). Transfer. Chatty customer, contact number, two lines (L3422 is fine).""",
    "blind3 d12 no data, contract ended, chatty, contact number, transfer",
    "accounts-contract-ended.toml", "L3421", "tau2",
    "Hi! So the mobile data on my work phone hasn't worked in ages. Actually I think nothing works on it, "
    "I mostly use it on Wi-Fi at home, ha. I've got two lines with you, it's the work one. Could you take "
    "a look?",
    {"phone_number": "555-720-2000", "full_name": "Mei Tanaka", "date_of_birth": "1983-07-07",
     "line": "The work one, 555-720-2001.", "location": "Home in Sacramento, not travelling."},
    state={"registered": "no"},
    expect=transferred(final_state={"lines.L3421.status": "Suspended", "lines.L3422.status": "Active"}),
)

scenario(
    "d13_over_limit_refuses_to_pay_angry_transfer.yaml",
    """No data because line L3261 used 5.9 GB of its Basic plan's 5 GB, and the customer will neither
buy data nor change plan (Step 2.1.4: if you cannot refuel or change plan, 'not allowed or user
does not want to' -> escalate to technical support). Angry customer, line number.""",
    "blind3 d13 no data, over limit, refuses refuel and plan change, angry, transfer",
    "accounts-over-limit.toml", "L3261", "plain",
    "My mobile data stopped working. And before you try to sell me anything: I am not paying a cent more "
    "than I already do.",
    {"phone_number": "555-560-7001", "full_name": "Harold Finch", "date_of_birth": "March 3, 1962",
     "line": "555-560-7001", "location": "Home in Albany."},
    over_limit="P1001",
    decisions={"confirmation": "no", "data_gb": "None. I'm not buying data.",
               "plan": "No. I'm keeping my plan."},
    expect=transferred(final_state={"lines.L3261.data_refueling_gb": 0, "lines.L3261.plan_id": "P1001"}),
)

# =====================================================================================================
# Path 2.2: slow mobile data
# =====================================================================================================

scenario(
    "w01_data_saver_chatty_contact_number.yaml",
    """Slow mobile data because Data Saver is on (Path 2.2, Step 2.2.1). Chatty tau2 Sarah Johnson,
contact number 555-123-1002 with five lines: the agent must ask which line (L1006).""",
    "blind3 w01 slow data, data saver, chatty, contact number, five lines",
    TAU2, "L1006", "tau2",
    "Hiya! Quick one, hopefully: the internet on my phone has been sooo slow today, pages take forever to "
    "load. I have a bunch of lines on my family account so just tell me what you need from me.",
    {"phone_number": "555-123-1002", "full_name": "Sarah Johnson", "date_of_birth": "1990-11-22",
     "line": "Mine is 555-123-2006.", "location": "I'm at home in Springfield, no trips planned."},
    state={"saver": "on"},
    expect=resolved(forbid_account_changes=False, device_actions=["toggle_data_saver_mode"],
                    device_state={"saver": "off"},
                    forbidden_extra=["refuel_data", "change_plan", "resume_line", "suspend_line"]),
)

scenario(
    "w02_3g_only_terse_customer_id.yaml",
    """Slow mobile data because the network mode is 3G only (Step 2.2.2: change to a mode with 5G).
Terse customer with a customer id, who does not give a number.""",
    "blind3 w02 slow data, 3G only, terse, customer id",
    "accounts-healthy.toml", "L3521", "screen",
    "Customer ID C3502. Data is really slow.",
    {"customer_id": "C3502", "phone_number": None, "full_name": "Diego Alvarez", "date_of_birth": "1997-06-06",
     "line": None, "location": "Home."},
    state={"mode": "3g_only"},
    expect=resolved(device_actions=["set_network_mode_preference"], device_state={"mode": "4g_5g_preferred"}),
)

scenario(
    "w03_vpn_elderly_name_dob.yaml",
    """Slow mobile data because a VPN is connected (Step 2.2.3: disconnect it). Elderly customer, name
+ date of birth in words.""",
    "blind3 w03 slow data, VPN, elderly, name and date of birth",
    "accounts-healthy.toml", "L3561", "plain",
    "Good morning. My mobile phone has become terribly slow at loading the news. My nephew fiddled with "
    "it at Christmas, I'm afraid.",
    {"phone_number": None, "customer_id": None, "full_name": "Arthur Pendleton",
     "date_of_birth": "22nd January 1939", "line": None, "location": "At home in Hartford."},
    state={"vpn": "on"},
    expect=resolved(forbidden_extra=["enable_roaming"], device_actions=["disconnect_vpn"],
                    device_state={"vpn": "off"}),
)

scenario(
    "w04_saver_2g_vpn_angry_contact_number.yaml",
    """Slow mobile data for three reasons: Data Saver on, network mode 2G only, VPN connected (Path 2.2,
all three steps). Angry customer, contact number, asks about her second line L3532.""",
    "blind3 w04 slow data, saver, 2G and VPN, angry, contact number",
    "accounts-healthy.toml", "L3532", "screen",
    "The internet on my second line is unbearably slow. I already restarted the phone three times. What is "
    "wrong with your network?",
    {"phone_number": "555-830-3000", "full_name": "Fatima Benali", "date_of_birth": "15 October 1989",
     "line": "555-830-3002", "location": "Home in Dearborn, obviously."},
    state={"saver": "on", "mode": "2g_only", "vpn": "on"},
    expect=resolved(forbidden_extra=["enable_roaming"],
                    device_actions=["toggle_data_saver_mode", "set_network_mode_preference", "disconnect_vpn"],
                    device_state={"saver": "off", "mode": "4g_5g_preferred", "vpn": "off"}),
    max_turns=50,
)

scenario(
    "w05_data_off_then_saver_non_native_line_number.yaml",
    """No mobile data (data switch off, Step 2.1.3), and once that is fixed the speed is only Poor
because Data Saver is on (Step 2.1.0: once resolved, if speed is not Excellent follow Path 2.2).
Non-native speaker, line number.""",
    "blind3 w05 no data then slow, data off and saver, non-native",
    "accounts-healthy.toml", "L3541", "tau2",
    "Hello, sorry for my english. Internet in my phone not work. Before it was very slow, now nothing.",
    {"phone_number": "555-840-4001", "full_name": "Sam Okoro", "date_of_birth": "04 April 2000",
     "line": "555-840-4001", "location": "I am in Atlanta, my home."},
    state={"data": "off", "saver": "on"},
    expect=resolved(device_actions=["toggle_data", "toggle_data_saver_mode"],
                    device_state={"data": "on", "saver": "off"}),
)

scenario(
    "w06_abroad_line_roaming_and_vpn_chatty_customer_id.yaml",
    """No mobile data abroad because line L3301 is not roaming enabled (phone roaming already on,
Step 2.1.2), then slow because of a VPN (Path 2.2, Step 2.2.3). Chatty customer, customer id.""",
    "blind3 w06 no data abroad then slow, line roaming off and VPN, chatty, customer id",
    "accounts-roaming-off.toml", "L3301", "plain",
    "Hi there, customer ID C3301! I'm in Berlin for work this week and my mobile data just won't connect. "
    "Data roaming is switched on on the phone, I checked. Oh, and I usually have my work VPN on, in case "
    "that matters.",
    {"customer_id": "C3301", "phone_number": "555-610-6001", "full_name": "Priya Raman",
     "date_of_birth": "08/08/1992", "line": "555-610-6001", "location": "Berlin, Germany, until Friday."},
    state={"abroad": "yes", "roaming": "on", "vpn": "on"},
    expect=resolved(actions=[{"name": "enable_roaming", "args": {"line_id": "L3301"}}],
                    device_actions=["disconnect_vpn"], device_state={"vpn": "off"},
                    final_state={"lines.L3301.roaming_enabled": True}),
    max_turns=50,
)

scenario(
    "w07_slow_unresolved_terse_transfer.yaml",
    """Slow mobile data that nothing in Path 2.2 fixes: Data Saver off, 4G/5G preferred, no VPN, speed
stays Fair (Step 2.2.3: no VPN -> escalate to technical support). Terse customer, line number.""",
    "blind3 w07 slow data, nothing fixes it, terse, transfer",
    "accounts-healthy.toml", "L3571", "tau2",
    "Slow internet on my phone.",
    {"phone_number": "555-870-7001", "full_name": "Jamal Carter", "date_of_birth": "1990-07-30",
     "line": "555-870-7001", "location": "Home."},
    state={"slow_fault": "yes"},
    expect=transferred(),
)

# =====================================================================================================
# Path 3: MMS
# =====================================================================================================

scenario(
    "m01_wifi_calling_terse_line_number.yaml",
    """MMS fails because Wi-Fi Calling is on (Path 3, Step 3.4: turn it off). Service and data fine.
Terse customer, line number.""",
    "blind3 m01 MMS, Wi-Fi Calling on, terse",
    "accounts-healthy.toml", "L3551", "tau2",
    "Can't send picture messages.",
    {"phone_number": "555-850-5001", "full_name": "Nadia Petrova", "date_of_birth": "1984-08-19",
     "line": "555-850-5001", "location": "Home."},
    state={"wifi_calling": "on"},
    expect=resolved(device_actions=["toggle_wifi_calling"], device_state={"wifi_calling": "off"}),
)

scenario(
    "m02_permissions_elderly_name_dob.yaml",
    """MMS fails because the messaging app lacks both the SMS and the storage permission (Step 3.5:
grant both). Elderly customer, name + date of birth.""",
    "blind3 m02 MMS, messaging permissions missing, elderly, name and date of birth",
    "accounts-healthy.toml", "L3501", "plain",
    "Hello, I'm trying to send a photograph of my cat to my daughter and the phone simply won't send it. "
    "It just says not sent. I don't know what I'm doing wrong.",
    {"phone_number": None, "customer_id": None, "full_name": "Margaret O'Neill",
     "date_of_birth": "February 28, 1946", "line": None, "location": "At home, dear."},
    state={"sms_perm": "missing", "storage_perm": "missing"},
    expect=resolved(forbidden_extra=["enable_roaming"], device_actions=["grant_app_permission"],
                    device_state={"sms_perm": "granted", "storage_perm": "granted"}),
    max_turns=50,
)

scenario(
    "m03_mmsc_missing_non_native_customer_id.yaml",
    """MMS fails because the APN has no MMSC URL (Step 3.6: reset APN settings; the manual: then
reboot for it to apply). Non-native speaker, customer id, no number given.""",
    "blind3 m03 MMS, MMSC URL missing, non-native, customer id",
    "accounts-healthy.toml", "L3541", "screen",
    "Hi. Customer ID C3504. I can not send photo in message (MMS). Normal SMS is OK.",
    {"customer_id": "C3504", "phone_number": None, "full_name": "Sam Okoro", "date_of_birth": "2000-04-04",
     "line": None, "location": "I am home, Atlanta."},
    state={"mmsc": "missing"},
    expect=resolved(device_actions=["reset_apn_settings", "reboot_device"],
                    device_state={"mmsc": "set", "apn_reset_pending": "no"}),
    max_turns=50,
)

scenario(
    "m04_2g_and_wifi_calling_chatty_contact_number.yaml",
    """MMS fails for two reasons: network mode 2G only (Step 3.3: switch to a mode with 3G/4G/5G) and
Wi-Fi Calling on (Step 3.4). Chatty customer, contact number, two lines.""",
    "blind3 m04 MMS, 2G and Wi-Fi Calling, chatty, contact number",
    "accounts-healthy.toml", "L3531", "tau2",
    "Hi! So I've been trying to send my mom photos from my niece's birthday party and they just won't go "
    "through, regular texts are fine though. I have two lines, it's my main one.",
    {"phone_number": "555-830-3000", "full_name": "Fatima Benali", "date_of_birth": "October 15, 1989",
     "line": "555-830-3001, my main number", "location": "I'm home in Dearborn."},
    state={"mode": "2g_only", "wifi_calling": "on"},
    expect=resolved(device_actions=["set_network_mode_preference", "toggle_wifi_calling"],
                    device_state={"mode": "4g_5g_preferred", "wifi_calling": "off"}),
    max_turns=50,
)

scenario(
    "m05_mms_suspended_angry_customer_id.yaml",
    """MMS fails because the phone has no service: line L3121 is suspended for overdue bill B3121 (Step
3.1 -> Path 1 -> Step 1.4: pay, resume, reboot). Angry customer with his customer id; three lines,
so the agent must ask which.""",
    "blind3 m05 MMS, suspended line, angry, customer id, three lines",
    "accounts-overdue-suspended.toml", "L3121", "plain",
    "Customer ID C3102. I can't send pictures from my phone and frankly I'm not sure it's even connecting. "
    "It's been like this for a week and I'm fed up.",
    {"customer_id": "C3102", "phone_number": "555-420-8001", "full_name": "Rajesh Subramanian",
     "date_of_birth": "1987-09-03", "line": "555-420-8001", "location": "Home in Edison.",
     "payment_method": "The credit card ending 8842."},
    state={"registered": "no"},
    expect=paid_and_resumed("C3102", "B3121", "L3121", forbidden_extra=["enable_roaming"]),
    max_turns=50,
)

scenario(
    "m06_mms_abroad_roaming_non_native_contact_number.yaml",
    """MMS fails abroad because mobile data does not work: data roaming off on the phone and line
L3351 not roaming enabled (Step 3.2 -> Path 2.1, Step 2.1.2). Non-native speaker, contact number,
two lines; only L3351 is to be changed (L3352 stays without roaming).""",
    "blind3 m06 MMS abroad, phone and line roaming off, non-native, contact number",
    "accounts-roaming-off.toml", "L3351", "screen",
    "Hello. I am in Osaka now, visiting my parents. I cannot send photo message from my phone. I have two "
    "lines in my account.",
    {"phone_number": "555-650-1000", "full_name": "Aiko Sato", "date_of_birth": "16 June 1996",
     "line": "555-650-1001", "location": "Osaka, Japan."},
    state={"abroad": "yes", "roaming": "off"},
    expect=resolved(actions=[{"name": "enable_roaming", "args": {"line_id": "L3351"}}],
                    forbidden_extra=[{"name": "enable_roaming", "args": {"line_id": "L3352"}}],
                    device_actions=["toggle_roaming"], device_state={"roaming": "on"},
                    final_state={"lines.L3351.roaming_enabled": True, "lines.L3352.roaming_enabled": False}),
    max_turns=50,
)

scenario(
    "m07_mms_over_limit_and_sms_permission_terse_customer_id.yaml",
    """MMS fails for two reasons: line L3251 used 15.2 GB of its Premium plan's 15 GB, so no mobile data
(Step 3.2 -> Step 2.1.4: refuel 2 GB at $2 per GB, $4, stated first), and the messaging app lacks
the SMS permission (Step 3.5). Terse customer, customer id.""",
    "blind3 m07 MMS, over limit and SMS permission, terse, customer id",
    "accounts-over-limit.toml", "L3251", "tau2",
    "Customer C3205. MMS not sending.",
    {"customer_id": "C3205", "phone_number": "555-550-6001", "full_name": "Chidi Okonkwo",
     "date_of_birth": "1994-11-11", "line": "555-550-6001", "location": "Home."},
    state={"sms_perm": "missing"},
    over_limit="P1002",
    decisions={"confirmation": "yes", "data_gb": "2"},
    expect={
        "actions": [{"name": "refuel_data", "args": {"line_id": "L3251", "gb_amount": 2}}],
        "forbidden_actions": ["change_plan", "resume_line", "send_payment_request", "enable_roaming",
                              "transfer_to_human_agents"],
        "final_state": {"lines.L3251.data_refueling_gb": 2},
        "reply_mentions": ["$4"],
        "handoff": False,
        "device_state": {"sms_perm": "granted"},
        "device_actions": ["grant_app_permission"],
    },
    max_turns=50,
)

scenario(
    "m08_mms_contract_ended_elderly_name_dob_transfer.yaml",
    """MMS fails because the phone has no service: line L3441 is suspended and its contract ended on
2025-01-31 (Step 3.1 -> Path 1 -> Step 1.4; the policy forbids lifting it). Transfer. Elderly,
confused customer, name + date of birth.""",
    "blind3 m08 MMS, contract ended, elderly, name and date of birth, transfer",
    "accounts-contract-ended.toml", "L3441", "plain",
    "Hello? My granddaughter told me to call you. I can't send the pictures, the little photos, from my "
    "telephone. And I don't think it rings anymore either.",
    {"phone_number": None, "customer_id": None, "full_name": "Beatrice Holloway",
     "date_of_birth": "5th May 1947", "line": None, "location": "Home in Savannah."},
    state={"registered": "no"},
    expect=transferred(final_state={"lines.L3441.status": "Suspended"}),
)

# =====================================================================================================


class Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


class Flow(dict):
    pass


def flow_presenter(dumper, data):
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


Dumper.add_representer(Flow, flow_presenter)


def flowify(value, key=None):
    if isinstance(value, dict):
        out = {k: flowify(v, k) for k, v in value.items()}
        return Flow(out) if key in ("when", "set", "args") or key is None and False else out
    if isinstance(value, list):
        return [flowify(v) for v in value]
    return value


def str_presenter(dumper, data):
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


Dumper.add_representer(str, str_presenter)


def dump(value):
    return yaml.dump(value, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=110,
                     default_flow_style=None)


def build(spec):
    doc = {
        "name": spec["name"],
        "accounts": spec["accounts"],
        "opening": spec["opening"],
        "customer": spec["customer"],
        "decisions": spec["decisions"],
        "max_turns": spec["max_turns"],
        "device": flowify(phone_gen.device(spec["style"], spec["line"], spec["over_limit"], **spec["state"])),
        "expect": flowify(spec["expect"]),
    }
    header = "\n".join("# " + line if line else "#" for line in spec["comment"].strip().splitlines())
    header += f"\n# Phone reports in the '{spec['style']}' style. Generated by generate.py (blind3 README)."
    return header + "\n" + dump(doc)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for name, text in accounts_gen.files().items():
        with open(os.path.join(here, name), "w") as out:
            out.write(text)
    names = set()
    for spec in SCENARIOS:
        assert spec["name"] not in names, spec["name"]
        names.add(spec["name"])
        with open(os.path.join(here, spec["file"]), "w") as out:
            out.write(build(spec))
    print(f"{len(SCENARIOS)} scenarios")


if __name__ == "__main__":
    main()
