//! Sums over the catalogue's prices and terms: refuels, roaming calls and texts, early
//! termination, suspension, outage credits, goodwill left, a payment extension's new due date,
//! and what a fee is.

use std::sync::LazyLock;

use knowledge::catalogue::{Fee, PlanFacts, Zone, format_gb};
use regex::Regex;

use super::question::{Question, ZoneMention, near};
use super::{COST_WORDS, ComputedAnswer, number};

static EXTENSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(extension|extend\w*|more time|postpone|push back|delay)\b").unwrap());
static DUE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(due|deadline)\b").unwrap());
static ASKED_ON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(today|now|asking|ask|request|get)\b[^.?!]{0,25}$").unwrap());

/// A payment extension's new due date: 14 days after the due date, or after the day of asking
/// when the due date has passed.
pub(super) fn extension_date(q: &Question<'_>) -> Option<ComputedAnswer> {
    if !q.has(&EXTENSION) || q.dates.is_empty() {
        return None;
    }
    let terms = &q.catalogue.payment_extension;
    // The due date is the date said after "due"; the other one is the day of asking.
    let due_at = DUE.find(&q.text)?.start();
    let mut dates = q.dates.clone();
    dates.sort_by_key(|(start, _)| *start);
    let due_index = dates.iter().position(|(start, _)| *start > due_at).unwrap_or(0);
    let (_, due) = dates[due_index];
    let asked = dates
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != due_index)
        .find(|(_, (start, _))| ASKED_ON.is_match(&q.text[..*start]) || dates.len() == 2)
        .map(|(_, (_, date))| near(*date, due));
    let days = chrono::Duration::days(terms.days);
    let format = |date: chrono::NaiveDate| date.format("%B %-d").to_string();
    let text = match asked {
        Some(asked) if asked > due => format!(
            "The due date ({}) has already passed, so the new due date is {} days after the day you ask: {} + {} days = {}.",
            format(due),
            terms.days,
            format(asked),
            terms.days,
            format(asked + days)
        ),
        _ => format!(
            "The new due date is {} days after the original due date: {} + {} days = {}.",
            terms.days,
            format(due),
            terms.days,
            format(due + days)
        ),
    };
    let text = format!(
        "{text} You can get one payment extension per calendar {}; the account must be active and the bill issued or overdue.",
        terms.one_per
    );
    Some(ComputedAnswer::new(text, [terms.source.clone()]))
}

static GOODWILL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bgoodwill\b").unwrap());

/// Goodwill credit left this year: the yearly cap less what was already given.
pub(super) fn goodwill_left(q: &Question<'_>) -> Option<ComputedAnswer> {
    if !q.has(&GOODWILL) {
        return None;
    }
    let terms = &q.catalogue.goodwill;
    let cap = terms.yearly_cap;
    let text = match q.money.first() {
        Some(used) => {
            let left = (cap - used).max(0.0);
            format!(
                "Goodwill credits are limited to {} per calendar year across all lines on the account: {} − {} = {} left this year{}.",
                q.money(cap),
                q.money(cap),
                q.money(*used),
                q.money(left),
                if left == 0.0 { ", until 1 January" } else { "" }
            )
        }
        None if q.has(&COST_WORDS) || q.has(&HOW_MUCH_OR_LIMIT) => format!(
            "A customer can receive at most {} in goodwill credits per calendar year, across all lines on the account.",
            q.money(cap)
        ),
        None => return None,
    };
    Some(ComputedAnswer::new(text, [terms.source.clone()]))
}

static HOW_MUCH_OR_LIMIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(how much|limit|max\w*|most|cap)\b").unwrap());

static OUTAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(outage|no service|without service|no signal|network (was |is )?down|went down|service (was |is )?down|no coverage)\b").unwrap()
});
static CREDIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(credit|compensat\w*|refund\w*|money back|get back|owed|discount|reimburse\w*|how much)\b").unwrap()
});

/// An outage credit: a thirtieth of the monthly price per full day without service.
pub(super) fn outage_credit(q: &Question<'_>) -> Option<ComputedAnswer> {
    if !q.has(&OUTAGE) || !q.has(&CREDIT) {
        return None;
    }
    let terms = &q.catalogue.outage_credit;
    let full_days = match (q.days, q.hours) {
        (Some(days), _) => Some(days.floor()),
        (None, Some(hours)) => Some((hours / 24.0).floor()),
        (None, None) => None,
    };
    let rule = format!(
        "A confirmed outage that leaves a line without service for more than {} hours in a row earns a credit of one {}th of the monthly plan price for each full day without service (ask within {} days).",
        terms.min_hours,
        number(terms.days_per_month),
        terms.claim_within_days
    );
    let plans = q.distinct_plans();
    let text = match (full_days, plans.as_slice()) {
        (Some(days), _) if q.hours.is_some_and(|hours| hours <= f64::from(terms.min_hours)) && q.days.is_none() => {
            format!("{rule} An outage of {} hours is not long enough for a credit.", number(q.hours.unwrap_or(days)))
        }
        (Some(days), [plan]) => {
            let credit = plan.price / terms.days_per_month * days;
            format!(
                "{rule} On the {} ({} a month): {} ÷ {} × {} days = {}.",
                plan.name,
                q.money(plan.price),
                q.money(plan.price),
                number(terms.days_per_month),
                number(days),
                q.money(credit)
            )
        }
        (Some(days), _) => {
            let each: Vec<String> = q
                .catalogue
                .plans
                .iter()
                .map(|plan| format!("{} {}", plan.name, q.money(plan.price / terms.days_per_month * days)))
                .collect();
            format!("{rule} For {} days: {}.", number(days), each.join(", "))
        }
        (None, _) => rule,
    };
    Some(ComputedAnswer::new(text, [terms.source.clone()]))
}

static SUSPEND: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bsuspen\w*|\bpaus\w*").unwrap());

/// What a suspended line costs: the plan charge continues and a monthly suspension fee is added.
pub(super) fn suspension_cost(q: &Question<'_>) -> Option<ComputedAnswer> {
    if !q.has(&SUSPEND) || !q.has(&COST_WORDS) {
        return None;
    }
    let fee = fee_by_id(q, "suspension")?;
    let months = q
        .months
        .or((q.month_names > 0).then_some(q.month_names as f64))
        .or(q.days.map(|days| (days / 31.0).ceil().max(1.0)))?;
    let months = months.ceil();
    let continues = q.catalogue.suspension.plan_charge_continues;
    let plans = q.distinct_plans();
    let text = match plans.as_slice() {
        [plan] if continues => {
            let per_month = plan.price + fee.amount;
            format!(
                "While a line is suspended, its plan charge continues and a {} suspension fee is added every month (a part of a month counts as a month). For the {}: {} months × ({} + {}) = {}.",
                q.money(fee.amount),
                plan.name,
                number(months),
                q.money(plan.price),
                q.money(fee.amount),
                q.money(months * per_month)
            )
        }
        _ => format!(
            "A suspended line is charged a {} suspension fee every month (a part of a month counts as a month): {} months × {} = {}{}.",
            q.money(fee.amount),
            number(months),
            q.money(fee.amount),
            q.money(months * fee.amount),
            if continues { ", and the plan's monthly price is still charged on top" } else { "" }
        ),
    };
    Some(ComputedAnswer::new(text, [fee.source.clone(), q.catalogue.suspension.source.clone()]))
}

static LEAVING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(terminat\w*|etf|cancel\w*|leave|leaving|quit\w*|break\w*|close|closing|get out|port\w*|switch\w* (carrier|provider|network|operator)s?|end (my|the) contract)\b").unwrap()
});

/// The early termination fee for the months left on a contract, capped.
pub(super) fn early_termination(q: &Question<'_>) -> Option<ComputedAnswer> {
    if !q.has(&LEAVING) {
        return None;
    }
    let months = q.months?.floor();
    let fee = fee_by_id(q, "early_termination")?;
    let raw = months * fee.amount;
    let charged = fee.cap.map_or(raw, |cap| raw.min(cap));
    let cap_text = fee.cap.map(|cap| format!(", at most {}", q.money(cap))).unwrap_or_default();
    let mut text = format!(
        "The early termination fee is {} for each full month left until the contract end date{cap_text}: {} × {} = {}",
        q.money(fee.amount),
        number(months),
        q.money(fee.amount),
        q.money(raw)
    );
    if charged < raw {
        text.push_str(&format!(", so you would pay the {} maximum.", q.money(charged)));
    } else {
        text.push('.');
    }
    text.push_str(&format!(
        " There is no fee after the contract end date, or within {} days of activation.",
        q.catalogue.contract.cooling_off_days
    ));
    Some(ComputedAnswer::new(text, [fee.source.clone()]))
}

static ROAMING_COST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(how much|cost|costs|price|pay|charge|charged|extra|bill|rates?|cheap\w*|expensive|free|included|total|per minute|per min|a minute)\b").unwrap()
});
static FROM_HOME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(from home|from here|at home|from the (us|usa|states|uk)|from my (home|country)|international calls?|calling (abroad|overseas))\b").unwrap()
});
static TRAVELLING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(roaming|abroad|overseas|travel\w*|trip|holiday|vacation|visit\w*|going to|flying|while (i'?m |we'?re |i am |we are )?(in|at)|when (i'?m |we'?re |i am |we are )?(in|at)|i'?m in|we'?re in)\b").unwrap()
});
static CALL_WORDS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bcall\w*|\bphon(e|ing) home\b").unwrap());
static BILL_TOTAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(bill|total|altogether|in all|whole month|that month|for the month)\b").unwrap());

/// Roaming: the extra cost of minutes and texts in a zone, or the zones' rates side by side.
pub(super) fn roaming(q: &Question<'_>) -> Option<ComputedAnswer> {
    let zones = q.distinct_zones();
    if zones.is_empty() || !q.has(&ROAMING_COST) {
        return None;
    }
    // "How much to call India from home?" is an international call, not roaming: the zone
    // rates are for calls made while there.
    if q.has(&FROM_HOME) && !q.has(&TRAVELLING) {
        return None;
    }
    let roaming = &q.catalogue.roaming;
    let has_quantities = q.minutes.is_some() || q.texts.is_some() || !q.data.is_empty();
    let mut sentences = Vec::new();
    if has_quantities && zones.len() == 1 {
        let mention = zones[0];
        let zone = mention.zone;
        let minutes = q.minutes.unwrap_or(0.0);
        let texts = q.texts.unwrap_or(0.0);
        let calls_cost = minutes * zone.call_per_minute;
        let texts_cost = texts * zone.text_each;
        let extra = calls_cost + texts_cost;
        if zone.as_at_home {
            sentences.push(format!(
                "{} is in Zone {} ({}), where you use your plan exactly as at home: calls and texts are included at no extra charge and data comes from your plan allowance, so that costs nothing extra ({}).",
                place_name(mention),
                zone.zone,
                zone.name,
                q.money(0.0)
            ));
        } else {
            let mut parts = Vec::new();
            if minutes > 0.0 {
                parts.push(format!(
                    "calls {} minutes × {} = {}",
                    number(minutes),
                    q.money(zone.call_per_minute),
                    q.money(calls_cost)
                ));
            }
            if texts > 0.0 {
                parts.push(format!(
                    "texts sent {} × {} = {}",
                    number(texts),
                    q.money(zone.text_each),
                    q.money(texts_cost)
                ));
            }
            let data = if q.data.is_empty() || !roaming.data_from_allowance {
                String::new()
            } else {
                " Data comes out of your plan allowance at no extra charge.".to_string()
            };
            let sum = if parts.len() > 1 { format!(" In all: {} extra.", q.money(extra)) } else { String::new() };
            let what = if parts.is_empty() {
                format!("costs nothing extra ({})", q.money(0.0))
            } else {
                format!("costs {} extra: {}", q.money(extra), parts.join("; "))
            };
            sentences.push(format!(
                "{} is in Zone {} ({}), so that {what}.{sum}{data} Receiving texts is free.",
                place_name(mention),
                zone.zone,
                zone.name,
            ));
        }
        if let [plan] = q.distinct_plans().as_slice()
            && q.has(&BILL_TOTAL)
        {
            sentences.push(format!(
                "With the {} at {} a month, that month's bill would be {} + {} = {}.",
                plan.name,
                q.money(plan.price),
                q.money(plan.price),
                q.money(extra),
                q.money(plan.price + extra)
            ));
        }
        if minutes > 0.0 && !zone.as_at_home && roaming.wifi_calling_as_home {
            sentences.push(wifi_calling_sentence());
        }
    } else {
        for mention in &zones {
            sentences.push(zone_rates(q, mention));
        }
        if zones.len() == 2 && q.has(&CHEAPER) {
            let (a, b) = (zones[0], zones[1]);
            if a.zone.call_per_minute != b.zone.call_per_minute {
                let cheaper = if a.zone.call_per_minute < b.zone.call_per_minute { a } else { b };
                sentences.push(format!("So calling is cheaper from {}.", place_name(cheaper)));
            }
        }
        let asks_about_calls = q.has(&CALL_WORDS) || q.has(&WIFI);
        if asks_about_calls && roaming.wifi_calling_as_home && zones.iter().any(|mention| !mention.zone.as_at_home) {
            sentences.push(wifi_calling_sentence());
        }
    }
    Some(ComputedAnswer::new(sentences.join(" "), [roaming.source.clone()]))
}

static CHEAPER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(cheaper|cheapest|less|more expensive|better)\b").unwrap());
static WIFI: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bwi-?fi\b").unwrap());

fn wifi_calling_sentence() -> String {
    "Calls made with Wi-Fi calling while abroad are billed as if you were at home, so they are free on plans with unlimited calls.".to_string()
}

fn place_name(mention: &ZoneMention<'_>) -> String {
    match &mention.place {
        Some(place) if place.len() <= 3 => place.to_uppercase(),
        Some(place) => capitalise_words(place),
        None => format!("Zone {}", mention.zone.zone),
    }
}

fn capitalise_words(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn zone_rates(q: &Question<'_>, mention: &ZoneMention<'_>) -> String {
    let zone: &Zone = mention.zone;
    let named = match &mention.place {
        Some(_) => format!("{} is in Zone {} ({})", place_name(mention), zone.zone, zone.name),
        None => format!("Zone {} ({})", zone.zone, zone.name),
    };
    if zone.as_at_home {
        format!("{named}: you use your plan as at home, with calls and texts included at no extra charge.")
    } else {
        format!(
            "{named}: calls (made or received) cost {} per minute and texts sent {} each; data comes from your plan allowance.",
            q.money(zone.call_per_minute),
            q.money(zone.text_each)
        )
    }
}

static REFUEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(refuel\w*|top[- ]?ups?|topping up|top (it|me|my \w+) up|extra data|more data|additional data|buy data|add data|extra gb|data add[- ]?ons?|\d+(\.\d+)? ?(more|extra|additional) (gb|gigs?)|another \d+(\.\d+)? ?(gb|gigs?))\b").unwrap()
});
static REFUEL_COUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d+) (?:x )?(\d+(?:\.\d+)?) ?(?:gb|gigs?) (?:refuels?|top[- ]?ups?)|\b(\d+(?:\.\d+)?) ?(?:gb|gigs?) (?:refuels?|top[- ]?ups?) (\d+) times|\b(twice)\b").unwrap()
});
static TOTAL_DATA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(in total|total|altogether|all together|the month|this month|that month|month cost|bill|how much data (do|would|will) i (get|have))\b").unwrap()
});
static RANKS_PLANS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(which|what) plans?\b|\b(cheapest|lowest|highest|most expensive|priciest|least expensive|best)\b")
        .unwrap()
});
static MAX_REFUEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(most|max\w*|limit|at once|in one|per refuel|one refuel|how much data can)\b").unwrap()
});

/// Refuels: the cost of extra data at the plan's price per GB, in refuels of at most 2 GB.
pub(super) fn refuel(q: &Question<'_>) -> Option<ComputedAnswer> {
    if !q.has(&REFUEL) {
        return None;
    }
    let terms = &q.catalogue.refuel;
    let max = terms.max_gb_per_refuel;
    let plans = q.distinct_plans();
    let mut sources: Vec<String> = vec![terms.source.clone()];
    // "two 2gb refuels", "2gb top up twice".
    let repeated = REFUEL_COUNT.captures(&q.text).and_then(|caps| {
        if let (Some(n), Some(gb)) = (caps.get(1), caps.get(2)) {
            Some((n.as_str().parse::<f64>().ok()?, gb.as_str().parse::<f64>().ok()?))
        } else if let (Some(gb), Some(n)) = (caps.get(3), caps.get(4)) {
            Some((n.as_str().parse::<f64>().ok()?, gb.as_str().parse::<f64>().ok()?))
        } else {
            Some((2.0, q.requested_data()?.gb))
        }
    });
    let amount = repeated.map(|(n, gb)| n * gb).or(q.requested_data().map(|d| d.gb));
    let Some(amount) = amount.filter(|gb| *gb > 0.0) else {
        if (!q.has(&MAX_REFUEL) && !q.has(&COST_WORDS)) || q.has(&RANKS_PLANS) {
            return None; // "which plan has the cheapest refuels?" ranks the plans
        }
        let prices: Vec<&PlanFacts> = if plans.is_empty() { q.catalogue.plans.iter().collect() } else { plans };
        let each: Vec<String> = prices
            .iter()
            .map(|plan| {
                format!(
                    "{} {} per GB ({} for {})",
                    plan.name,
                    q.money(plan.refuel_price_per_gb),
                    format_gb(max),
                    q.money(plan.refuel_price_per_gb * max)
                )
            })
            .collect();
        sources.extend(prices.iter().map(|plan| plan.source.clone()));
        let text = format!(
            "You can add at most {} per refuel (refuel again for more), at your plan's price: {}. Refuelled data lasts until the end of the billing cycle{}.",
            format_gb(max),
            each.join("; "),
            if terms.rolls_over { "" } else { " and does not roll over" }
        );
        return Some(ComputedAnswer::new(text, sources));
    };
    let n_refuels = (amount / max).ceil();
    let how_many = if n_refuels > 1.0 {
        format!(", in {} refuels of at most {} each", number(n_refuels), format_gb(max))
    } else {
        String::new()
    };
    let priced: Vec<&PlanFacts> = if plans.is_empty() { q.catalogue.plans.iter().collect() } else { plans };
    let mut sentences = Vec::new();
    for plan in &priced {
        let cost = amount * plan.refuel_price_per_gb;
        sentences.push(format!(
            "On the {}, {} of extra data costs {} × {} = {}{how_many}.",
            plan.name,
            format_gb(amount),
            number(amount),
            q.money(plan.refuel_price_per_gb),
            q.money(cost)
        ));
        sources.push(plan.source.clone());
    }
    if let [plan] = priced.as_slice()
        && q.has(&TOTAL_DATA)
    {
        let cost = amount * plan.refuel_price_per_gb;
        sentences.push(format!(
            "That makes {} + {} = {} of data for the month, and the month costs {} + {} = {}.",
            format_gb(plan.data_gb),
            format_gb(amount),
            format_gb(plan.data_gb + amount),
            q.money(plan.price),
            q.money(cost),
            q.money(plan.price + cost)
        ));
    }
    if priced.len() == 2 && q.has(&CHEAPER) {
        let (a, b) = (priced[0], priced[1]);
        let cheaper = if a.refuel_price_per_gb <= b.refuel_price_per_gb { a } else { b };
        sentences.push(format!("So it is cheaper on the {}.", cheaper.name));
    }
    if amount > max && n_refuels <= 1.0 {
        sentences.push(format!("Each refuel adds at most {}.", format_gb(max)));
    }
    Some(ComputedAnswer::new(sentences.join(" "), sources))
}

fn fee_by_id<'c>(q: &Question<'c>, id: &str) -> Option<&'c Fee> {
    q.catalogue.fee(id)
}

static FEE_ASK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(how much|cost|costs|price|prices|what('?s| is| are) the|whats the|is there (a|any)|are there (any)?|do (you|u) charge|charged? for|is it free|free of charge|penalty for|vs|versus|difference|diff)\b").unwrap()
});

/// What a fee is and when it is charged: "how much is a replacement SIM?".
pub(super) fn fee(q: &Question<'_>) -> Option<ComputedAnswer> {
    if !q.has(&FEE_ASK) {
        return None;
    }
    let mut best: Option<(&Fee, usize)> = None;
    for fee in &q.catalogue.fees {
        for name in std::iter::once(&fee.name).chain(&fee.also_called) {
            let lower = name.to_lowercase();
            let found = q.text.match_indices(lower.as_str()).any(|(start, _)| {
                let end = start + lower.len();
                !q.text[..start].ends_with(|c: char| c.is_alphanumeric())
                    && !q.text[end..].starts_with(|c: char| c.is_alphanumeric())
            });
            if found && best.is_none_or(|(_, len)| lower.len() > len) {
                best = Some((fee, lower.len()));
            }
        }
    }
    let (fee, _) = best?;
    let per = match fee.per.as_str() {
        "month" => " per month".to_string(),
        "bill" => " per overdue bill".to_string(),
        "payment" => " per payment".to_string(),
        "remaining_month" => " for each full month left until the contract end date".to_string(),
        _ => String::new(),
    };
    let cap = fee.cap.map(|cap| format!(", at most {}", q.money(cap))).unwrap_or_default();
    let name = {
        let mut chars = fee.name.chars();
        chars.next().map(|first| first.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
    };
    let amount = if fee.amount == 0.0 { format!("free ({})", q.money(0.0)) } else { q.money(fee.amount) };
    let text = format!("{name}: {amount}{per}{cap}. {}", fee.note);
    Some(ComputedAnswer::new(text, [fee.source.clone()]))
}
