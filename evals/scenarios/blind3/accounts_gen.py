"""The blind3 account files: tau2 db.toml shape, one file per account-side cause.

Imported by generate.py; writes accounts-*.toml next to this file.
"""

PLANS = [
    ("P1001", "Basic Plan", 5.0, 40.0, 5.0),
    ("P1002", "Premium Plan", 15.0, 65.0, 2.0),
    ("P1003", "Unlimited Plus", 999.0, 85.0, 0.1),
    ("P1004", "Family Share", 25.0, 120.0, 3.0),
    ("P1005", "IoT Basic", 1.0, 15.0, 10.0),
]
PLAN_NAME = {p[0]: p[1] for p in PLANS}
PLAN_PRICE = {p[0]: p[3] for p in PLANS}


def q(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(q(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def customer(cid, name, dob, phone, lines, bills, methods, city, status="Active", created="2023-06-01T10:00:00"):
    return dict(
        customer_id=cid,
        full_name=name,
        date_of_birth=dob,
        email=name.lower().replace(" ", ".").replace("'", "") + "@example.com",
        phone_number=phone,
        account_status=status,
        created_at=created,
        goodwill_credit_used_this_year=0.0,
        line_ids=[l["line_id"] for l in lines],
        bill_ids=[b["bill_id"] for b in bills],
        payment_methods=methods,
        address=dict(street="12 Elm St", city=city[0], state=city[1], zip_code=city[2]),
        _lines=lines,
        _bills=bills,
    )


def line(lid, number, plan, used=1.0, roaming=False, status="Active", since=None, contract="2026-12-31",
         refuel=0.0, device=None):
    out = dict(
        line_id=lid,
        phone_number=number,
        status=status,
        plan_id=plan,
        device_id=device,
        data_used_gb=used,
        data_refueling_gb=refuel,
        roaming_enabled=roaming,
        contract_end_date=contract,
        last_plan_change_date="2024-09-01",
    )
    if since:
        out["suspension_start_date"] = since
    return out


def bill(bid, cid, period, total, status, items, due=None):
    start, end = period
    issue = {"2024-12-01": "2024-12-05", "2025-01-01": "2025-02-01", "2025-02-01": "2025-02-05",
             "2025-03-01": "2025-03-01"}[start]
    return dict(
        bill_id=bid,
        customer_id=cid,
        period_start=start,
        period_end=end,
        issue_date=issue,
        total_due=total,
        due_date=due or {"2024-12-01": "2024-12-19", "2025-01-01": "2025-02-10", "2025-02-01": "2025-02-26",
                         "2025-03-01": "2025-03-15"}[start],
        status=status,
        line_items=[dict(description=d, amount=a, date=issue, item_type=t) for d, a, t in items],
    )


def card(kind, last4, exp):
    return dict(method_type=kind, account_number_last_4=last4, expiration_date=exp)


DEC = ("2024-12-01", "2024-12-31")
JAN = ("2025-01-01", "2025-01-31")
FEB = ("2025-02-01", "2025-02-28")


def plan_items(lines):
    return [(f"{PLAN_NAME[l['plan_id']]} - Line {l['phone_number']}", PLAN_PRICE[l["plan_id"]], "Plan Charge")
            for l in lines]


def total(items):
    return float(sum(a for _, a, _ in items))


def render(customers, header):
    out = [f"# {line_}" for line_ in header.strip().splitlines()]
    out.append("# Plans as in data/tau2-telecom/db.toml. Business date 2025-02-25.")
    out.append("[meta]")
    out.append('today = "2025-02-25"')
    out.append("")
    for pid, name, limit, price, refuel in PLANS:
        out += ["[[plans]]", f"plan_id = {q(pid)}", f"name = {q(name)}", f"data_limit_gb = {q(limit)}",
                f"price_per_month = {q(price)}", f"data_refueling_price_per_gb = {q(refuel)}", ""]
    for c in customers:
        for l in c["_lines"]:
            out.append("[[lines]]")
            for k, v in l.items():
                if v is not None:
                    out.append(f"{k} = {q(v)}")
            out.append("")
    for c in customers:
        out.append("[[customers]]")
        for k in ["customer_id", "full_name", "date_of_birth", "email", "phone_number", "account_status",
                  "created_at", "goodwill_credit_used_this_year", "line_ids", "bill_ids"]:
            out.append(f"{k} = {q(c[k])}")
        for m in c["payment_methods"]:
            out.append("[[customers.payment_methods]]")
            for k, v in m.items():
                out.append(f"{k} = {q(v)}")
        out.append("[customers.address]")
        for k, v in c["address"].items():
            out.append(f"{k} = {q(v)}")
        out.append("")
    for c in customers:
        for b in c["_bills"]:
            out.append("[[bills]]")
            for k in ["bill_id", "customer_id", "period_start", "period_end", "issue_date", "total_due", "due_date",
                      "status"]:
                out.append(f"{k} = {q(b[k])}")
            if not b["line_items"]:
                out.append("line_items = []")
            for item in b["line_items"]:
                out.append("[[bills.line_items]]")
                for k, v in item.items():
                    out.append(f"{k} = {q(v)}")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def paid_history(cid, bid, lines):
    items = plan_items(lines)
    return bill(bid, cid, DEC, total(items), "Paid", items)


def overdue(cid, bid, lines, fee=0.0):
    items = plan_items(lines)
    if fee:
        items.append(("Late Payment Fee", fee, "Fee"))
    return bill(bid, cid, JAN, total(items), "Overdue", items)


def paid_jan(cid, bid, lines):
    items = plan_items(lines)
    return bill(bid, cid, JAN, total(items), "Paid", items)


def files():
    f = {}

    # ---- overdue bill, line suspended for it
    dolores_l = [line("L3101", "555-410-7001", "P1001", used=1.1, status="Suspended", since="2025-02-12",
                      contract="2026-09-30")]
    rajesh_l = [
        line("L3121", "555-420-8001", "P1002", used=3.2, status="Suspended", since="2025-02-15",
             contract="2026-11-30"),
        line("L3122", "555-420-8002", "P1001", used=2.0),
        line("L3123", "555-420-8003", "P1001", used=0.4),
    ]
    kwame_l = [
        line("L3131", "555-430-9001", "P1001", used=2.6, status="Suspended", since="2025-02-18",
             contract="2027-01-31"),
        line("L3132", "555-430-9002", "P1002", used=6.0, roaming=True),
    ]
    ana_l = [line("L3141", "555-440-1001", "P1002", used=4.4, status="Suspended", since="2025-02-20",
                  contract="2026-05-31")]
    kim_l = [line("L3151", "555-450-1001", "P1001", used=0.9, status="Suspended", since="2025-02-14")]
    f["accounts-overdue-suspended.toml"] = render([
        customer("C3101", "Dolores Whitaker", "1941-07-04", "555-410-7000", dolores_l,
                 [paid_history("C3101", "B3100", dolores_l), overdue("C3101", "B3101", dolores_l, fee=5.0)],
                 [card("Debit Card", "4417", "09/2027")], ("Dayton", "OH", "45402")),
        customer("C3102", "Rajesh Subramanian", "1987-09-03", "555-420-8000", rajesh_l,
                 [paid_history("C3102", "B3120", rajesh_l), overdue("C3102", "B3121", rajesh_l)],
                 [card("Credit Card", "8842", "03/2028")], ("Edison", "NJ", "08817")),
        customer("C3103", "Kwame Mensah", "1979-12-19", "555-430-9001", kwame_l,
                 [paid_history("C3103", "B3130", kwame_l), overdue("C3103", "B3131", kwame_l)],
                 [card("PayPal", "3390", "11/2026"), card("Credit Card", "1200", "05/2027")],
                 ("Columbus", "OH", "43215")),
        customer("C3104", "Ana Lucia Ferreira", "1993-05-27", "555-440-1000", ana_l,
                 [overdue("C3104", "B3141", ana_l), bill("B3142", "C3104", ("2025-03-01", "2025-03-31"), 0.0,
                                                         "Draft", [])],
                 [card("Credit Card", "7001", "10/2026")], ("Newark", "NJ", "07102")),
        customer("C3105", "Kim Nguyen", "1999-01-30", "555-450-1001", kim_l,
                 [paid_history("C3105", "B3150", kim_l), overdue("C3105", "B3151", kim_l)],
                 [card("Debit Card", "2525", "01/2028")], ("San Jose", "CA", "95112")),
    ], """blind3: customers with an overdue bill and a line suspended for it (contracts still running).
Dolores Whitaker C3101 (one line L3101, landline contact 555-410-7000), Rajesh Subramanian C3102
(contact 555-420-8000, three lines, L3121 suspended), Kwame Mensah C3103 (contact number is line L3131,
two payment methods), Ana Lucia Ferreira C3104 (one line, a Draft March bill too), Kim Nguyen C3105.""")

    # ---- data usage over the plan's limit
    tomasz_l = [line("L3201", "555-510-2001", "P1001", used=5.3)]
    brenda_l = [
        line("L3221", "555-520-3001", "P1002", used=15.6),
        line("L3222", "555-520-3002", "P1001", used=2.0),
        line("L3223", "555-520-3003", "P1001", used=5.4),
    ]
    li_l = [line("L3231", "555-530-4001", "P1004", used=25.8)]
    frank_l = [line("L3241", "555-540-5001", "P1001", used=5.6)]
    chidi_l = [line("L3251", "555-550-6001", "P1002", used=15.2)]
    harold_l = [line("L3261", "555-560-7001", "P1001", used=5.9)]
    f["accounts-over-limit.toml"] = render([
        customer("C3201", "Tomasz Wojcik", "1990-02-14", "555-510-2001", tomasz_l,
                 [paid_jan("C3201", "B3201", tomasz_l)], [card("Credit Card", "6123", "08/2027")],
                 ("Chicago", "IL", "60629")),
        customer("C3202", "Brenda Cole", "1968-10-10", "555-520-3000", brenda_l,
                 [paid_jan("C3202", "B3221", brenda_l)], [card("Debit Card", "9090", "02/2027")],
                 ("Tulsa", "OK", "74103")),
        customer("C3203", "Li Wei", "1985-03-08", "555-530-4000", li_l,
                 [paid_jan("C3203", "B3231", li_l)], [card("Credit Card", "3131", "12/2026")],
                 ("Seattle", "WA", "98104")),
        customer("C3204", "Frank Delgado", "1955-06-21", "555-540-5001", frank_l,
                 [paid_jan("C3204", "B3241", frank_l)], [card("Credit Card", "4545", "07/2026")],
                 ("El Paso", "TX", "79901")),
        customer("C3205", "Chidi Okonkwo", "1994-11-11", "555-550-6000", chidi_l,
                 [paid_jan("C3205", "B3251", chidi_l)], [card("Debit Card", "5150", "04/2027")],
                 ("Houston", "TX", "77002")),
        customer("C3206", "Harold Finch", "1962-03-03", "555-560-7001", harold_l,
                 [paid_jan("C3206", "B3261", harold_l)], [card("Credit Card", "1111", "06/2026")],
                 ("Albany", "NY", "12207")),
    ], """blind3: lines whose data usage is over the plan's limit, nothing refuelled, bills paid.
Tomasz Wojcik L3201 (Basic, 5.3 of 5 GB), Brenda Cole C3202 (contact 555-520-3000; L3221 Premium 15.6 of 15;
L3223 Basic 5.4 of 5 is over too but is not the line she calls about), Li Wei L3231 (Family Share 25.8 of 25,
landline contact), Frank Delgado L3241 (Basic 5.6), Chidi Okonkwo L3251 (Premium 15.2, contact 555-550-6000),
Harold Finch L3261 (Basic 5.9).""")

    # ---- line not roaming enabled
    priya_l = [line("L3301", "555-610-6001", "P1002", used=3.0)]
    henrik_l = [line("L3321", "555-620-7001", "P1002", used=4.1), line("L3322", "555-620-7002", "P1001",
                                                                         used=1.0, roaming=True)]
    gloria_l = [line("L3331", "555-630-8001", "P1001", used=5.2)]
    yusuf_l = [line("L3341", "555-640-9001", "P1003", used=20.0)]
    aiko_l = [line("L3351", "555-650-1001", "P1002", used=2.2), line("L3352", "555-650-1002", "P1003", used=8.0)]
    f["accounts-roaming-off.toml"] = render([
        customer("C3301", "Priya Raman", "1992-08-08", "555-610-6001", priya_l,
                 [paid_jan("C3301", "B3301", priya_l)], [card("Credit Card", "2468", "09/2026")],
                 ("Fremont", "CA", "94538")),
        customer("C3302", "Henrik Larsen", "1975-04-02", "555-620-7000", henrik_l,
                 [paid_jan("C3302", "B3321", henrik_l)], [card("Credit Card", "7531", "01/2027")],
                 ("Minneapolis", "MN", "55401")),
        customer("C3303", "Gloria Mendes", "1950-11-30", "555-630-8001", gloria_l,
                 [paid_jan("C3303", "B3331", gloria_l)], [card("Debit Card", "8080", "05/2026")],
                 ("Miami", "FL", "33130")),
        customer("C3304", "Yusuf Demir", "1988-01-17", "555-640-9001", yusuf_l,
                 [paid_jan("C3304", "B3341", yusuf_l)], [card("Credit Card", "6006", "11/2027")],
                 ("Paterson", "NJ", "07501")),
        customer("C3305", "Aiko Sato", "1996-06-16", "555-650-1000", aiko_l,
                 [paid_jan("C3305", "B3351", aiko_l)], [card("Credit Card", "1616", "06/2028")],
                 ("Portland", "OR", "97201")),
    ], """blind3: lines that are not roaming enabled (the customers travel abroad in the scenarios).
Priya Raman L3301, Henrik Larsen C3302 (contact 555-620-7000; L3321 not roaming enabled, L3322 is),
Gloria Mendes L3331 (also over her Basic limit: 5.2 of 5 GB), Yusuf Demir L3341 (Unlimited Plus),
Aiko Sato C3305 (contact 555-650-1000; L3351 and L3352, neither roaming enabled).""")

    # ---- contract ended, line suspended for it, bills paid
    walter_l = [line("L3401", "555-710-1001", "P1001", used=0.2, status="Suspended", since="2025-02-01",
                     contract="2025-01-31")]
    mei_l = [line("L3421", "555-720-2001", "P1002", used=0.0, status="Suspended", since="2025-01-01",
                  contract="2024-12-31"), line("L3422", "555-720-2002", "P1001", used=1.5)]
    olek_l = [line("L3431", "555-730-3001", "P1001", used=0.6, status="Suspended", since="2025-02-15",
                   contract="2025-02-14")]
    bea_l = [line("L3441", "555-740-4001", "P1002", used=0.3, status="Suspended", since="2025-02-02",
                  contract="2025-01-31")]
    f["accounts-contract-ended.toml"] = render([
        customer("C3401", "Walter Brooks", "1949-09-09", "555-710-1001", walter_l,
                 [paid_history("C3401", "B3400", walter_l), paid_jan("C3401", "B3401", walter_l)],
                 [card("Debit Card", "7070", "03/2027")], ("Scranton", "PA", "18503")),
        customer("C3402", "Mei Tanaka", "1983-07-07", "555-720-2000", mei_l,
                 [paid_jan("C3402", "B3421", mei_l)], [card("Credit Card", "2323", "10/2027")],
                 ("Sacramento", "CA", "95814")),
        customer("C3403", "Oleksandr Kovalenko", "1991-12-01", "555-730-3001", olek_l,
                 [paid_jan("C3403", "B3431", olek_l)], [card("Credit Card", "9119", "12/2027")],
                 ("Brooklyn", "NY", "11201")),
        customer("C3404", "Beatrice Holloway", "1947-05-05", "555-740-4000", bea_l,
                 [paid_jan("C3404", "B3441", bea_l)], [card("Debit Card", "5005", "05/2026")],
                 ("Savannah", "GA", "31401")),
    ], """blind3: lines suspended because their contract ended (end date before 2025-02-25); no bill is overdue.
Walter Brooks L3401, Mei Tanaka C3402 (contact 555-720-2000; L3421 suspended, L3422 active),
Oleksandr Kovalenko L3431 (contract ended 2025-02-14), Beatrice Holloway L3441 (landline contact).""")

    # ---- nothing wrong on the account
    marg_l = [line("L3501", "555-810-1001", "P1001", used=1.2)]
    diego_l = [line("L3521", "555-820-2001", "P1002", used=4.0, roaming=True)]
    fatima_l = [line("L3531", "555-830-3001", "P1002", used=6.0, roaming=True),
                line("L3532", "555-830-3002", "P1001", used=1.0)]
    sam_l = [line("L3541", "555-840-4001", "P1003", used=30.5, roaming=True)]
    nadia_l = [line("L3551", "555-850-5001", "P1002", used=7.7, roaming=True)]
    arthur_l = [line("L3561", "555-860-6001", "P1001", used=0.8)]
    jamal_l = [line("L3571", "555-870-7001", "P1002", used=9.1, roaming=True)]
    f["accounts-healthy.toml"] = render([
        customer("C3501", "Margaret O'Neill", "1946-02-28", "555-810-1000", marg_l,
                 [paid_jan("C3501", "B3501", marg_l)], [card("Debit Card", "1946", "02/2027")],
                 ("Boston", "MA", "02108")),
        customer("C3502", "Diego Alvarez", "1997-06-06", "555-820-2001", diego_l,
                 [paid_jan("C3502", "B3521", diego_l)], [card("Credit Card", "6060", "06/2027")],
                 ("Phoenix", "AZ", "85004")),
        customer("C3503", "Fatima Benali", "1989-10-15", "555-830-3000", fatima_l,
                 [paid_jan("C3503", "B3531", fatima_l)], [card("Credit Card", "1015", "10/2027")],
                 ("Dearborn", "MI", "48126")),
        customer("C3504", "Sam Okoro", "2000-04-04", "555-840-4001", sam_l,
                 [paid_jan("C3504", "B3541", sam_l)], [card("Debit Card", "4004", "04/2028")],
                 ("Atlanta", "GA", "30303")),
        customer("C3505", "Nadia Petrova", "1984-08-19", "555-850-5001", nadia_l,
                 [paid_jan("C3505", "B3551", nadia_l)], [card("Credit Card", "8190", "08/2027")],
                 ("Brighton Beach", "NY", "11235")),
        customer("C3506", "Arthur Pendleton", "1939-01-22", "555-860-6000", arthur_l,
                 [paid_jan("C3506", "B3561", arthur_l)], [card("Debit Card", "1939", "01/2027")],
                 ("Hartford", "CT", "06103")),
        customer("C3507", "Jamal Carter", "1990-07-30", "555-870-7001", jamal_l,
                 [paid_jan("C3507", "B3571", jamal_l)], [card("Credit Card", "7300", "07/2027")],
                 ("Baltimore", "MD", "21201")),
    ], """blind3: customers whose accounts are in order (lines active, within limits, bills paid); the faults
are on the phone. Margaret O'Neill L3501 (landline contact 555-810-1000), Diego Alvarez L3521, Fatima Benali
C3503 (contact 555-830-3000; L3531 and L3532), Sam Okoro L3541 (Unlimited Plus), Nadia Petrova L3551,
Arthur Pendleton L3561 (landline contact 555-860-6000), Jamal Carter L3571.""")
    return f
