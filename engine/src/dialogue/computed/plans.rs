//! Answers about the plans themselves: one plan's facts, plans filtered and ranked, plans
//! compared, and the monthly cost of several lines.

use std::sync::LazyLock;

use knowledge::catalogue::{PlanFacts, format_gb};
use regex::Regex;

use super::question::Question;
use super::{COST_WORDS, ComputedAnswer, and_list, profile};

/// Words that ask about a plan's facts.
static ABOUT_A_PLAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(how much|how many|cost|costs|price|pay|data|gb|gigs?|5g|4g|lte|calls?|texts?|talk|id|refuel\w*|top ?ups?|lines?|people|ppl|persons?|share|shared|include[sd]?|come with|comes with|get|what is|whats|what's|tell me|about|hotspot|tether\w*|allowance|speed|roll ?over|carry over|monthly|per month|a month)\b").unwrap()
});

static ROLLOVER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(roll\w*|carr(y|ies) over|unused|left ?over)\b").unwrap());
static HOW_MANY_LINES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bhow many (lines|people|ppl|persons|phones|members|users)\b").unwrap());
static HOTSPOT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(hotspot|tether\w*)\b").unwrap());

/// One plan's facts: "what does the IoT Basic plan cost and how much data?".
pub(super) fn lookup(q: &Question<'_>) -> Option<ComputedAnswer> {
    let plans = q.distinct_plans();
    let [plan] = plans.as_slice() else { return None };
    if !q.has(&ABOUT_A_PLAN) {
        return None;
    }
    let mut text = profile(q.catalogue, plan);
    if plan.max_lines > 1 && q.has(&HOW_MANY_LINES) {
        text.push_str(&format!(
            " Up to {} lines share the {} pool, at one price of {} a month.",
            plan.max_lines,
            format_gb(plan.data_gb),
            q.money(plan.price)
        ));
    }
    if q.has(&HOTSPOT) && plan.hotspot {
        text.push_str(" Personal hotspot is included and uses the plan's data.");
    }
    let mut sources = vec![plan.source.clone()];
    if q.has(&ROLLOVER) {
        text.push_str(if q.catalogue.refuel.rolls_over {
            " Unused data rolls over to the next month."
        } else {
            " Unused data does not roll over to the next month."
        });
        sources.push(q.catalogue.refuel.source.clone());
    }
    Some(ComputedAnswer::new(text, sources))
}

static COMPARE_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(difference|differences|diff|vs|versus|compare\w*|or|better|cheaper|more|less|between|than|which)\b")
        .unwrap()
});
static HOW_MUCH_MORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bhow much (more|less|cheaper|extra)\b|\bprice difference\b|\bdifference in (price|cost)\b").unwrap()
});

/// Two or more plans side by side: "difference between basic and premium?".
pub(super) fn compare(q: &Question<'_>) -> Option<ComputedAnswer> {
    let plans = q.distinct_plans();
    if plans.len() < 2 || !q.has(&COMPARE_WORDS) {
        return None;
    }
    let mut sentences: Vec<String> = plans.iter().map(|plan| profile(q.catalogue, plan)).collect();
    let (a, b) = (plans[0], plans[1]);
    if plans.len() == 2 {
        let (dearer, cheaper) = if a.price >= b.price { (a, b) } else { (b, a) };
        let difference = dearer.price - cheaper.price;
        if difference > 0.0 {
            sentences.push(format!(
                "So {} costs {} more a month than {} ({} − {} = {}).",
                dearer.name,
                q.money(difference),
                cheaper.name,
                q.money(dearer.price),
                q.money(cheaper.price),
                q.money(difference),
            ));
        } else {
            sentences.push(format!("Both cost {} a month.", q.money(a.price)));
        }
        if a.data_gb != b.data_gb && !q.has(&HOW_MUCH_MORE) {
            let (more, less) = if a.data_gb > b.data_gb { (a, b) } else { (b, a) };
            sentences.push(format!(
                "{} has {} more data ({} against {}).",
                more.name,
                format_gb(more.data_gb - less.data_gb),
                format_gb(more.data_gb),
                format_gb(less.data_gb)
            ));
        }
    }
    let sources = plans.iter().map(|plan| plan.source.clone());
    Some(ComputedAnswer::new(sentences.join(" "), sources))
}

/// What a list of plans is asked to satisfy.
#[derive(Debug, Default)]
struct Criteria {
    five_g: Option<bool>,
    calls: Option<bool>,
    min_data_gb: Option<f64>,
    max_price: Option<(f64, bool)>,
    hotspot: bool,
}

impl Criteria {
    fn read(q: &Question<'_>) -> Criteria {
        let mut criteria = Criteria::default();
        if q.has(&NO_5G) {
            criteria.five_g = Some(false);
        } else if q.has(&FIVE_G) {
            criteria.five_g = Some(true);
        }
        if q.has(&NO_CALLS) {
            criteria.calls = Some(false);
        } else if q.has(&WITH_CALLS) {
            criteria.calls = Some(true);
        }
        if let Some(caps) = MIN_DATA.captures(&q.text) {
            criteria.min_data_gb = q.data.iter().find(|d| d.end > caps.get(0).expect("match").start()).map(|d| d.gb);
        } else if let Some(first) = q.data.first()
            && q.text[..first.start].trim_end().ends_with("with")
        {
            criteria.min_data_gb = Some(first.gb);
        }
        if let Some(caps) = MAX_PRICE.captures(&q.text) {
            let strict = !matches!(&caps[1], "max" | "maximum" | "up to" | "at most" | "no more than");
            criteria.max_price = q.money.first().map(|amount| (*amount, strict));
        }
        criteria.hotspot = q.has(&HOTSPOT);
        criteria
    }

    fn accepts(&self, plan: &PlanFacts) -> bool {
        self.five_g.is_none_or(|wanted| plan.five_g == wanted)
            && self.calls.is_none_or(|wanted| plan.calls == wanted)
            && self.min_data_gb.is_none_or(|gb| plan.data_gb >= gb)
            && self.max_price.is_none_or(|(max, strict)| if strict { plan.price < max } else { plan.price <= max })
            && (!self.hotspot || plan.hotspot)
    }

    fn is_empty(&self) -> bool {
        self.five_g.is_none() && self.calls.is_none() && self.min_data_gb.is_none() && self.max_price.is_none()
    }

    /// "with 5G and at least 10 GB".
    fn describe(&self, q: &Question<'_>) -> String {
        let mut parts = Vec::new();
        match self.five_g {
            Some(true) => parts.push("5G".to_string()),
            Some(false) => parts.push("no 5G (4G LTE only)".to_string()),
            None => {}
        }
        match self.calls {
            Some(true) => parts.push("calls and texts".to_string()),
            Some(false) => parts.push("data only".to_string()),
            None => {}
        }
        if let Some(gb) = self.min_data_gb {
            parts.push(format!("at least {}", format_gb(gb)));
        }
        if let Some((max, strict)) = self.max_price {
            parts.push(format!("a price {} {}", if strict { "under" } else { "of at most" }, q.money(max)));
        }
        if self.hotspot {
            parts.push("hotspot".to_string());
        }
        if parts.is_empty() { String::new() } else { format!(" with {}", and_list(&parts)) }
    }
}

static FIVE_G: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b5g\b").unwrap());
static NO_5G: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(no|without|not|lacks?|lacking|missing|don'?t have|doesn'?t have|don'?t (come with|include)|only) (the )?5g\b|\b4g( lte)? only\b|\bonly (4g|lte)\b|\b5g (is )?not (included|available)\b").unwrap()
});
static NO_CALLS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(no|without) (calls|calling|voice|phone calls)\b|\bdata[- ]only\b|\bjust data\b|\bonly data\b")
        .unwrap()
});
static WITH_CALLS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(with|include|includes|including|have|has|need|needs) (unlimited )?(calls|calling|talk|voice)\b")
        .unwrap()
});
static MIN_DATA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(at least|minimum( of)?|min|more than|over|no less than|or more)\b|\d\s*(gb|gigs?)\s*(\+|or more|and up|minimum)").unwrap()
});
static MAX_PRICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(under|less than|below|cheaper than|max|maximum|up to|at most|no more than|within)\b[^.?!]{0,12}(\$|\d)",
    )
    .unwrap()
});

/// What the plans are ranked by.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rank {
    Cheapest,
    Dearest,
    MostData,
    LeastData,
    CheapestRefuel,
    DearestRefuel,
}

static CHEAP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(cheapest|least expensive|lowest( price| cost)?|most affordable|lowest priced|cheaper)\b").unwrap()
});
static DEAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(most expensive|priciest|highest( price| cost)?|dearest)\b").unwrap());
static MOST_DATA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(most|biggest|largest|highest|max(imum)?) (data|gb|gigs|allowance)\b|\bmost data\b").unwrap()
});
static LEAST_DATA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(least|smallest|lowest|min(imum)?) (data|gb|gigs|allowance)\b").unwrap());
static REFUEL_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(refuel\w*|top[- ]?ups?|topping up|extra data|more data|additional data|extra gb|data add[- ]?ons?|per gb|overage)\b").unwrap()
});
static LIST_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(which|what|any|list|show|tell me|do (you|u) (have|offer|sell)|is there|are there|got|options?|all)\b[^.?!]*\bplans?\b|\bplans?\b[^.?!]*\b(have|has|with|come with|include|includes|offer|support|are|allow|let)\b").unwrap()
});

fn rank(q: &Question<'_>) -> Option<Rank> {
    let refuel = q.has(&REFUEL_WORDS);
    if q.has(&MOST_DATA) {
        Some(Rank::MostData)
    } else if q.has(&LEAST_DATA) {
        Some(Rank::LeastData)
    } else if q.has(&DEAR) {
        Some(if refuel { Rank::DearestRefuel } else { Rank::Dearest })
    } else if q.has(&CHEAP) {
        Some(if refuel { Rank::CheapestRefuel } else { Rank::Cheapest })
    } else {
        None
    }
}

/// Plans filtered by what they include and ranked: "which plans have 5G?", "cheapest plan with
/// at least 10 GB", "which plan has the most expensive top ups?".
pub(super) fn filter_and_rank(q: &Question<'_>) -> Option<ComputedAnswer> {
    let criteria = Criteria::read(q);
    let rank = rank(q);
    let asks_for_plans = q.has(&LIST_WORDS) || (rank.is_some() && q.has(&PLAN_WORD));
    if !asks_for_plans || (rank.is_none() && criteria.is_empty() && !criteria.hotspot) {
        return None;
    }
    if q.distinct_plans().len() > 1 && rank.is_none() {
        return None; // named plans are compared, not listed
    }
    let catalogue = q.catalogue;
    let mut matching: Vec<&PlanFacts> = catalogue.plans.iter().filter(|plan| criteria.accepts(plan)).collect();
    let wanted = criteria.describe(q);
    if matching.is_empty() {
        let text = format!("None of our plans comes{wanted}. {}", all_plans_sentence(q));
        return Some(ComputedAnswer::new(text, catalogue.plans.iter().map(|plan| plan.source.clone())));
    }
    let key = |plan: &PlanFacts| match rank {
        Some(Rank::Cheapest) | None => plan.price,
        Some(Rank::Dearest) => -plan.price,
        Some(Rank::MostData) => -plan.data_gb,
        Some(Rank::LeastData) => plan.data_gb,
        Some(Rank::CheapestRefuel) => plan.refuel_price_per_gb,
        Some(Rank::DearestRefuel) => -plan.refuel_price_per_gb,
    };
    matching.sort_by(|a, b| key(a).total_cmp(&key(b)).then(a.price.total_cmp(&b.price)));
    let short = |plan: &PlanFacts| match rank {
        Some(Rank::CheapestRefuel | Rank::DearestRefuel) => {
            format!("{} ({} per GB of extra data)", plan.name, q.money(plan.refuel_price_per_gb))
        }
        _ => short_facts(q, plan),
    };
    let mut sentences = Vec::new();
    match rank {
        Some(rank) => {
            let best = matching[0];
            let what = match rank {
                Rank::Cheapest => "The cheapest plan",
                Rank::Dearest => "The most expensive plan",
                Rank::MostData => "The plan with the most data",
                Rank::LeastData => "The plan with the least data",
                Rank::CheapestRefuel => "The plan with the cheapest extra data (refuels)",
                Rank::DearestRefuel => "The plan with the most expensive extra data (refuels)",
            };
            sentences.push(format!("{what}{wanted} is {}.", short(best)));
            if rank == Rank::Cheapest
                && !best.calls
                && criteria.calls.is_none()
                && let Some(phone) = matching.iter().find(|plan| plan.calls)
            {
                sentences.push(format!(
                    "{} is data only (no calls or texts); the cheapest plan with calls is {}.",
                    best.name,
                    short_facts(q, phone)
                ));
            }
            if matching.len() > 1 {
                let rest: Vec<String> = matching[1..].iter().map(|plan| short(plan)).collect();
                sentences.push(format!("Then: {}.", rest.join("; ")));
            }
        }
        None if matching.len() == catalogue.plans.len() => {
            let all: Vec<String> = matching.iter().map(|plan| plan.name.clone()).collect();
            sentences.push(format!(
                "Every plan comes{wanted}: all {} of our plans ({}).",
                matching.len(),
                and_list(&all)
            ));
        }
        None => {
            let listed: Vec<String> = matching.iter().map(|plan| short(plan)).collect();
            let verb = if matching.len() == 1 { "The plan" } else { "The plans" };
            sentences.push(format!("{verb}{wanted}: {}.", listed.join("; ")));
            let others: Vec<String> =
                catalogue.plans.iter().filter(|plan| !criteria.accepts(plan)).map(|plan| plan.name.clone()).collect();
            sentences.push(format!(
                "Not {}: {}.",
                if others.len() == 1 { "this one" } else { "these" },
                and_list(&others)
            ));
        }
    }
    let sources: Vec<String> = matching.iter().map(|plan| plan.source.clone()).collect();
    Some(ComputedAnswer::new(sentences.join(" "), sources))
}

static PLAN_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(plans?|options?|deals?|packages?|data|top[- ]?ups?|refuels?)\b").unwrap());

/// "Premium Plan ($65 a month, 15 GB, 5G)".
fn short_facts(q: &Question<'_>, plan: &PlanFacts) -> String {
    let mut facts = vec![format!("{} a month", q.money(plan.price)), format_gb(plan.data_gb)];
    if plan.max_lines > 1 {
        facts[1] = format!("{} shared by up to {} lines", format_gb(plan.data_gb), plan.max_lines);
    }
    facts.push(if plan.five_g { "5G".into() } else { "4G LTE".into() });
    if !plan.calls {
        facts.push("data only".into());
    }
    format!("{} ({})", plan.name, facts.join(", "))
}

fn all_plans_sentence(q: &Question<'_>) -> String {
    let all: Vec<String> = q.catalogue.plans.iter().map(|plan| short_facts(q, plan)).collect();
    format!("Our plans: {}.", all.join("; "))
}

static SPLIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(each|split|splitting|per person|per head|a head|evenly|divided?|share the cost|apiece)\b").unwrap()
});
static PEOPLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d+) (of us|people|ppl|persons|members|users|friends|roommates|adults|kids|lines|phones)\b|\b(family|household|group) of (\d+)\b").unwrap()
});

/// The lines of each plan a question counts: "2 basic lines and 1 premium line",
/// "3 lines on unlimited plus", "5 unlimited plus lines".
fn counted_lines<'c>(q: &Question<'c>) -> Vec<(u32, &'c PlanFacts)> {
    let mut counted = Vec::new();
    for mention in &q.plans {
        let before = q.text[..mention.start].trim_end();
        let before = before.strip_suffix('x').map(str::trim_end).unwrap_or(before);
        let before = before.strip_suffix("the").map(str::trim_end).unwrap_or(before);
        let number_before = before.rsplit(' ').next().and_then(|word| word.parse::<u32>().ok());
        let after = &q.text[mention.end..];
        let number_on = LINES_ON.captures(before).and_then(|caps| caps[1].parse::<u32>().ok());
        let number_for = FOR_LINES.captures(after).and_then(|caps| caps[1].parse::<u32>().ok());
        if let Some(count) = number_before.or(number_on).or(number_for).filter(|count| (1..=50).contains(count)) {
            counted.push((count, mention.plan));
        }
    }
    counted
}

static LINES_ON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d+) (lines|phones|numbers|sims)( each)? (on|with|of)( the)?$").unwrap());
static FOR_LINES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?: plan)?s? (?:for|with|x) (\d+) (lines|phones|people|ppl|of us|members|users)\b").unwrap()
});

/// The monthly cost of several lines: "2 basic lines and 1 premium line, how much a month?",
/// "if 4 of us split a family share plan, how much each?".
pub(super) fn lines_cost(q: &Question<'_>) -> Option<ComputedAnswer> {
    if !q.has(&COST_WORDS) && !q.has(&SPLIT) {
        return None;
    }
    let mut counted = counted_lines(q);
    let people = PEOPLE
        .captures(&q.text)
        .and_then(|caps| caps.get(1).or_else(|| caps.get(4)).and_then(|m| m.as_str().parse::<u32>().ok()));
    let plans = q.distinct_plans();
    if counted.is_empty() {
        // "if 4 of us split a family share plan": the people are the lines.
        match (plans.as_slice(), people) {
            ([plan], Some(n)) if q.has(&SPLIT) || n > 1 => counted.push((n, plan)),
            _ => return None,
        }
    }
    let n_lines: u32 = counted.iter().map(|(count, _)| count).sum();
    if n_lines < 2 && !q.has(&SPLIT) {
        return None;
    }
    let mut parts = Vec::new();
    let mut total = 0.0;
    for (count, plan) in &counted {
        if plan.max_lines > 1 {
            let n_plans = count.div_ceil(plan.max_lines);
            let cost = f64::from(n_plans) * plan.price;
            total += cost;
            if n_plans == 1 {
                parts.push(format!(
                    "{count} lines on one {} (up to {} lines share {} for {}) = {}",
                    plan.name,
                    plan.max_lines,
                    format_gb(plan.data_gb),
                    q.money(plan.price),
                    q.money(cost)
                ));
            } else {
                parts.push(format!(
                    "{count} lines need {n_plans} {} plans (up to {} lines each): {n_plans} × {} = {}",
                    plan.name,
                    plan.max_lines,
                    q.money(plan.price),
                    q.money(cost)
                ));
            }
        } else {
            let cost = f64::from(*count) * plan.price;
            total += cost;
            parts.push(format!(
                "{count} {} line{} × {} = {}",
                plan.name,
                if *count == 1 { "" } else { "s" },
                q.money(plan.price),
                q.money(cost)
            ));
        }
    }
    let mut text = if parts.len() == 1 {
        format!("{}: {} a month in total.", parts[0], q.money(total))
    } else {
        format!("{}. Together: {} a month.", parts.join("; "), q.money(total))
    };
    let sharers = people.unwrap_or(n_lines);
    if q.has(&SPLIT) && sharers > 1 {
        text.push_str(&format!(
            " Split evenly between {sharers}, that is {} ÷ {sharers} = {} each per month.",
            q.money(total),
            q.money(total / f64::from(sharers))
        ));
    }
    let sources = counted.iter().map(|(_, plan)| plan.source.clone());
    Some(ComputedAnswer::new(text, sources))
}
